#!/usr/bin/env bash
# The rustflags of a Lambda binary, printed for RUSTFLAGS: `make package` and `make coldstart`
# build with them, always with an explicit --target so that they reach the target's code only
# (a proc macro built with them would fail to link).
#   relocation-model=static: a fixed-address (non-PIE) executable, with no dynamic relocations
#   for the loader to apply at start.
echo "-C relocation-model=static"
