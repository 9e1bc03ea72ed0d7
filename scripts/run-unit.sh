#!/bin/sh
# Run every cmocka unit test binary in DIR; print each one's summary and a total.
dir=$1
pass=0 fail=0
for t in "$dir"/test_*; do
    [ -x "$t" ] || continue
    if "$t" >"$t.log" 2>&1; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        cat "$t.log"
    fi
    grep -E '^\[  (PASSED|FAILED)  \]' "$t.log" | sed "s|^|$(basename "$t"): |"
done
echo "unit ($dir): $pass passed, $fail failed"
[ "$fail" -eq 0 ]
