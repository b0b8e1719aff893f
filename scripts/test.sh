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

# Test-only: the report test renders report.html in headless Chromium (Debian 12's package is `chromium`).
if ! command -v chromium >/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "test: installing chromium"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

# Test-only: the ONNX export test runs the exported model in onnxruntime (PyPI).
if ! python3 -c "import onnxruntime, onnx" 2>/dev/null; then
    echo "test: installing onnxruntime and onnx (pip)"
    python3 -m pip install -q onnxruntime onnx
fi

# The steady-state training step must not allocate: counted with a malloc shim preloaded into a release
# test build (this rebuilds the release products with testing enabled).
scripts/count-step-allocations.sh

swift build --build-tests 2>&1 | { grep -v "^\[" || true; }
# All tests are XCTest; without Swift Testing the run ends on the XCTest totals.
swift test --skip-build --disable-swift-testing
