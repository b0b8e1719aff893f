#!/usr/bin/env python3
"""Times librosa's feature pipeline on one core: librosa.load(sr=22050) + melspectrogram + power_to_db.

Generates N deterministic 48 kHz mono 16-bit clips of 0.4-1 s (numpy + soundfile) in a temporary
directory (or --keep-dir, to time another implementation on the same clips), then prints
`librosa: X clips/s`. The digits-dist CLI runs this next to its own feature benchmark.
"""
import argparse
import os
import pathlib
import tempfile
import time
import warnings

# One core, like the single-threaded Swift extractor it is compared with.
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

SR, N_FFT, HOP, N_MELS, FMIN, FMAX = 22050, 2048, 512, 128, 50.0, 16000.0


def write_clips(folder: pathlib.Path, count: int) -> list:
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        n = int(rng.uniform(0.4, 1.0) * 48000)
        t = np.arange(n) / 48000
        y = 0.4 * np.sin(2 * np.pi * rng.uniform(100, 400) * t) + 0.05 * rng.standard_normal(n)
        path = folder / f"clip{index:05d}.wav"
        sf.write(str(path), y.astype(np.float32), 48000, subtype="PCM_16")
        paths.append(str(path))
    return paths


def features(path: str) -> np.ndarray:
    y, _ = librosa.load(path, sr=SR)
    mel = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, fmin=FMIN, fmax=FMAX)
    return librosa.power_to_db(mel)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=500, help="number of clips to time")
    parser.add_argument("--keep-dir", help="write the clips here and keep them (default: a temporary directory)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # fmax above Nyquist: the empty top filters are intended
    with tempfile.TemporaryDirectory() as temporary:
        folder = pathlib.Path(args.keep_dir or temporary)
        folder.mkdir(parents=True, exist_ok=True)
        paths = write_clips(folder, args.clips)
        features(paths[0])  # warm up: imports, caches, filterbank
        start = time.perf_counter()
        for path in paths:
            features(path)
        elapsed = time.perf_counter() - start
    print(f"librosa: {len(paths) / elapsed:.1f} clips/s")


if __name__ == "__main__":
    main()
