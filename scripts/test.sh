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

# The sbatch files as they are, on a real single-node Slurm stood up for the purpose (Debian's packages;
# it starts munged, slurmctld and slurmd and submits as an unprivileged user, so it needs root).
if [ "$(id -u)" -eq 0 ]; then
    scripts/slurm-cluster.sh swift test --skip-build --disable-swift-testing --filter SlurmTests
else
    echo "test: the Slurm tests need root (scripts/slurm-cluster.sh starts the daemons); skipped"
fi

# Across hosts over TCP: two hosts made of network namespaces on this machine (root only), mpirun on the
# first reaching the second through Open MPI's rsh agent, as on a cluster without Slurm.
if [ "$(id -u)" -eq 0 ]; then
    scripts/netns-hosts.sh swift test --skip-build --disable-swift-testing --filter MultiHostTests
else
    echo "test: the multi-host tests need root (scripts/netns-hosts.sh makes network namespaces); skipped"
fi

# The bits must not depend on which kernels OpenBLAS picks for the CPU: an AVX2-only node (AMD Zen 3) runs
# its Haswell family, an AVX-512 one (Zen 4) SkylakeX, a CPU it does not know its generic Prescott kernels.
# On an AVX-512 machine the determinism and numeric tests run again on the Haswell family with a
# DIGITS_DIST_TARGET_CPU=haswell build (exactly what a Zen 3 node runs), and on the SkylakeX family; so
# green here means green there.
if grep -qw avx512f /proc/cpuinfo; then
    echo "test: building for the haswell target (.build-haswell)"
    DIGITS_DIST_TARGET_CPU=haswell swift build -c release --scratch-path .build-haswell 2>&1 | { grep -v "^\[" || true; }
    determinism='NNTests|TrainingMPITests|ResumeTests|FoldParallelTests'
    for family in Haswell SkylakeX; do
        binary="$PWD/.build/release/digits-dist"
        [ "$family" = Haswell ] && binary="$PWD/.build-haswell/release/digits-dist"
        echo "test: determinism and numeric tests on OpenBLAS's $family kernels with ${binary#"$PWD"/}"
        OPENBLAS_CORETYPE=$family DIGITS_DIST_BINARY="$binary" \
            swift test --skip-build --disable-swift-testing --filter "$determinism"
    done
fi
