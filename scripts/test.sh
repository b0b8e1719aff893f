#!/usr/bin/env bash
# Every test: set-up (system packages, release build), then the unit tests and the integration tests,
# which run the release binary under real mpirun with several ranks on real files.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

# Integration tests run this binary (built by setup.sh) rather than a slow debug build.
export DIGITS_DIST_BINARY="$PWD/.build/release/digits-dist"
# Open MPI refuses root without these; CI and containers run as root.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

swift build --build-tests 2>&1 | grep -v "^\[" || true
swift test --skip-build
