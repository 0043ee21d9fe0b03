#!/bin/sh
# Configures (once) and builds the tree in place.
set -eu
cd "$(dirname "$0")/.."
[ -x configure ] || autoreconf -fi
[ -f Makefile ] || ./configure -q
make -j2
