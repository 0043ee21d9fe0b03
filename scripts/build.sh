#!/bin/sh
# Configures (once) and builds the tree in place. The output of each step
# goes to build.log; on a failure its end is shown.
set -eu
cd "$(dirname "$0")/.."
log=build.log
: >"$log"
run() {
	if ! "$@" >>"$log" 2>&1; then
		tail -40 "$log" >&2
		echo "build.sh: \"$*\" failed; the full output is in $(pwd)/$log" >&2
		exit 1
	fi
}
[ -x configure ] || run autoreconf -fi
[ -f Makefile ] || run ./configure -q
run make -j2
