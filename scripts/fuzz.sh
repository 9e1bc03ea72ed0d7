#!/bin/sh
# fuzz.sh - run every libFuzzer target of tests/fuzz for a while and report on each.
#
#   scripts/fuzz.sh DIR SECS [NAME...]     (make fuzz [FUZZ_SECS=600] runs it)
#
# DIR holds the fuzzers (fuzz_NAME, built by make fuzz-build with clang and
# -fsanitize=fuzzer,address,undefined); each one runs SECS seconds over a fresh copy of its
# committed seed corpus tests/fuzz/corpus/NAME, made in DIR/work/NAME/corpus: the committed
# corpus is never written to. New inputs worth keeping can be minimized into it by hand
# (fuzz_NAME -merge=1 tests/fuzz/corpus/NAME DIR/work/NAME/corpus). Per target it prints
# the runs, executions per second and coverage (libFuzzer's cov: edges and ft: features).
# A crash, leak, sanitizer report or broken invariant leaves its input in DIR/work/NAME/
# (the path is printed, with the log's end); the script then goes on with the other
# targets and exits 1. Reproduce with: DIR/fuzz_NAME PATH. FUZZ_NICE (default 10) is
# the nice level the fuzzers run at.
set -u
dir=$1
secs=$2
shift 2
corpus_root=tests/fuzz/corpus
nice=${FUZZ_NICE:-10}
names=$*
if [ -z "$names" ]; then
    for b in "$dir"/fuzz_*; do
        [ -x "$b" ] && names="$names ${b##*/fuzz_}"
    done
fi
if [ -z "$names" ]; then
    echo "fuzz: no fuzzers in $dir (make fuzz-build)" >&2
    exit 1
fi
failed=0
for n in $names; do
    bin=$dir/fuzz_$n
    work=$dir/work/$n
    rm -rf "$work"
    mkdir -p "$work/corpus"
    if [ -d "$corpus_root/$n" ]; then
        cp "$corpus_root/$n"/* "$work/corpus/" 2>/dev/null
    fi
    log=$work/log
    nice -n "$nice" "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    if [ "$rc" -eq 0 ]; then
        printf 'fuzz %-12s ok     %ss runs=%s exec/s=%s cov=%s ft=%s\n' "$n" "$secs" \
            "${runs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}"
    else
        failed=1
        crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        printf 'fuzz %-12s FAILED (exit %s) runs=%s input=%s log=%s\n' "$n" "$rc" "${runs:-?}" \
            "${crash:-none}" "$log"
        tail -n 30 "$log" | sed 's/^/    /'
    fi
done
exit $failed
