#!/bin/sh
# Check the layering of common/: each layer (given lowest first: lib mail ctl server)
# may include its own headers and those of the layers below it, never one above.
# Prints each offending #include as file:line and exits 1 if there is any.
set -u
cd "$(dirname "$0")/.." || exit 2
bad=0
below=""
for layer in "$@"; do
    below="$below $layer"
    for f in common/"$layer"/*.[ch]; do
        [ -f "$f" ] || continue
        grep -n '^#include "' "$f" | while IFS= read -r hit; do
            line=${hit%%:*}
            hdr=$(printf '%s\n' "$hit" | sed 's/.*#include "\([^"]*\)".*/\1/')
            found=""
            for l in $below; do
                [ -f "common/$l/$hdr" ] && found=$l
            done
            if [ -z "$found" ]; then
                for l in "$@"; do
                    if [ -f "common/$l/$hdr" ]; then
                        echo "$f:$line: includes $hdr of layer $l, above $layer"
                        exit 1
                    fi
                done
                echo "$f:$line: includes $hdr, which no layer of common/ has"
                exit 1
            fi
        done || bad=1
    done
done
[ "$bad" -eq 0 ] && echo "layers: common/$(echo "$@" | sed 's/ / < /g'): clean"
exit "$bad"
