#!/bin/sh
# make bench: dmail against Postfix and Dovecot on 127.0.0.1 (see bench/README.md).
#   scripts/bench.sh BINDIR [bench.py options]     QUICK=1 in the environment: tiny sizes
set -eu
bindir=${1:-bin}
[ $# -gt 0 ] && shift
if [ ! -x /usr/bin/python3 ]; then
    echo "bench: /usr/bin/python3 is missing (apt-get install python3)" >&2
    exit 1
fi
exec /usr/bin/python3 "$(dirname "$0")/../bench/bench.py" --bin "$bindir" "$@"
