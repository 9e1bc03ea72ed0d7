#!/bin/sh
# Run the pytest integration tests against the programs in BINDIR; further arguments go
# to pytest (scripts/run-it.sh bin -k forward).
mkdir -p "$1"; bindir=$(cd "$1" && pwd); shift
export DMAIL_BIN="$bindir"
case "$bindir" in
*/asan) export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1"
        export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" ;;
esac
[ -d tests/it ] && ls tests/it/test_*.py >/dev/null 2>&1 || { echo "it: no integration tests yet"; exit 0; }
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/it "$@"
