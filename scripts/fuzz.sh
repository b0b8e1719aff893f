#!/usr/bin/env bash
# Mutation fuzzing of the four parsers users feed (WAV, CSV, YAML config, checkpoint) for SECONDS each
# (so 4 × SECONDS in all), starting from the committed corpus (Tests/FuzzTests/Corpus/<parser>/). A crash or a
# refusal longer than one line fails; the crashing input is kept as fuzz-crash-<parser>.* in FUZZ_OUT
# (default a new folder in /tmp, printed) to be fixed and then added to the corpus, which every test run replays.
#   scripts/fuzz.sh [SECONDS] [SEED]        (default 600 s, seed from the clock)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600} seed=${2:-$(date +%s)}
export FUZZ_OUT=${FUZZ_OUT:-$(mktemp -d /tmp/digits-dist-fuzz.XXXXXX)}
rm -f "$FUZZ_OUT"/fuzz-crash-*
swift build --build-tests >/dev/null
echo "fuzzing each parser for $seconds s (seed $seed)"
log=$(mktemp)
FUZZ_SECONDS=$seconds FUZZ_SEED=$seed swift test --skip-build --filter ParserFuzzTests.testMutatedInputsParseOrAreRefused >"$log" 2>&1 || true
grep -E '^fuzz |error:|Fatal' "$log" || true
crashes=$(ls "$FUZZ_OUT"/fuzz-crash-* 2>/dev/null || true)
if [ -z "$crashes" ] && grep -q 'with 0 failures' "$log"; then
    echo "no crash, every refusal one line"
    rm -f "$log"
    exit 0
fi
echo "fuzz: failed (log $log)${crashes:+; crashed on: $crashes}" >&2
exit 1
