#!/usr/bin/env bash
# Runs the unit tests of ocistore-fs that exercise its unsafe blocks under Miri (nightly), which
# checks every pointer, lifetime and initialisation they rely on. Not part of CI (.ci/run does
# not install nightly); see fuzz/README.md for what Miri covers and what it cannot run.
#
#   fuzz/miri.sh              # the fsutil tests (the ones that need FFI Miri lacks are ignored)
#   fuzz/miri.sh TEST_FILTER  # another filter of ocistore-fs's unit tests
set -euo pipefail

cd "$(dirname "$0")/.."
if ! cargo +nightly miri --version >/dev/null 2>&1; then
    rustup component add --toolchain nightly miri rust-src
fi
# Isolation off: the tests create files in a temporary directory and read the clock.
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-disable-isolation}"
# Miri's own target directory, so that it never invalidates the ordinary build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/miri-build"
cargo +nightly miri test -p ocistore-fs --lib -- "${1:-fsutil::}"
# Also built under Miri but ignored there (it needs futimens and utimensat):
# store::in_flight::tests::refresh_mtime_makes_an_old_blob_young_and_never_follows_a_link.
