#!/usr/bin/env bash
# Set-up on a fresh Debian 12 machine with Swift 6.3 on PATH: installs the system libraries digits-dist
# links (only those missing; needs root or sudo), then builds the release binary
# .build/release/digits-dist. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(pkg-config libopenmpi-dev openmpi-bin libsndfile1-dev libfftw3-dev libopenblas-dev libsoxr-dev espeak-ng sox)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "setup: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

command -v swift >/dev/null || { echo "setup: swift is not on PATH (Swift 6.3 is needed)" >&2; exit 1; }
swift build -c release 2>&1 | { grep -v "^\[" || true; } || { echo "setup: the release build failed" >&2; exit 1; }
echo "setup: built .build/release/digits-dist"
