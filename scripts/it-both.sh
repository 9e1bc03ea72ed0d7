#!/bin/sh
# The integration tests of both builds side by side (make check): bin/ and bin/asan/,
# each in its own half of the ports 10000-32767 (DMAIL_IT_PORTS, see tests/it/dmail_site.py)
# and its own log; both logs are printed when both are done, and the exit status is the
# first failure's. Further arguments go to pytest (scripts/it-both.sh -k smtp).
mkdir -p build
DMAIL_IT_PORTS=10000-21000 scripts/run-it.sh bin "$@" >build/it-normal.log 2>&1 &
normal=$!
DMAIL_IT_PORTS=21001-32000 scripts/run-it.sh bin/asan "$@" >build/it-asan.log 2>&1 &
asan=$!
wait $normal; rn=$?
wait $asan; ra=$?
echo "== integration tests, normal build (exit $rn)"; cat build/it-normal.log
echo "== integration tests, ASan+UBSan build (exit $ra)"; cat build/it-asan.log
[ $rn -ne 0 ] && exit $rn
exit $ra
