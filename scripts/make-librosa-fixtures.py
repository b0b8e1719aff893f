#!/usr/bin/env python3
"""Writes the librosa reference fixtures for Tests/AudioTests (run from anywhere; paths are repo-relative).

For each input clip this writes, next to the synthetic WAVs in Tests/AudioTests/Fixtures/:
  <name>.logmel.npy  power_to_db(melspectrogram(y)) with the project's settings, float32 (mels, frames)
  <name>.y.npy       y from librosa.load(path, sr=22050): decoded, mono, resampled (float32)
and once, mel.npy: librosa.filters.mel for a small config that also has empty top filters.

Inputs: two deterministic synthetic clips (22,050 Hz and 48 kHz, 16-bit, 0.7 s) and the real
8 kHz FSDD recording ../shared/data/fsdd/recordings/3_theo_7.wav (read in place, never copied).
"""
import pathlib
import warnings

import librosa
import numpy as np
import soundfile as sf

REPO = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = REPO / "Tests" / "AudioTests" / "Fixtures"
FSDD_CLIP = REPO / ".." / "shared" / "data" / "fsdd" / "recordings" / "3_theo_7.wav"

# The project's AudioSettings (Sources/Audio/AudioSettings.swift).
SR, N_FFT, HOP, N_MELS, FMIN, FMAX = 22050, 2048, 512, 128, 50.0, 16000.0


def synthetic_clip(sr: int, seconds: float = 0.7, seed: int = 7) -> np.ndarray:
    """A chirp with two harmonics and low noise, faded in and out, with silence at both ends."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    f0, f1 = 150.0, 3000.0
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
    y = 0.5 * np.sin(phase) + 0.2 * np.sin(2 * phase) + 0.1 * np.sin(3 * phase)
    y += 0.01 * rng.standard_normal(n)
    silence = int(0.1 * sr)
    envelope = np.zeros(n)
    voiced = n - 2 * silence
    envelope[silence : n - silence] = np.hanning(voiced) ** 0.5
    return (y * envelope).astype(np.float32)


def features(y: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fmax above Nyquist: the empty top filters are intended
        mel = librosa.feature.melspectrogram(
            y=y, sr=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, fmin=FMIN, fmax=FMAX
        )
    return librosa.power_to_db(mel).astype(np.float32)


def write_references(name: str, path: pathlib.Path) -> None:
    y, _ = librosa.load(str(path), sr=SR)
    np.save(FIXTURES / f"{name}.y.npy", y.astype(np.float32))
    logmel = features(y)
    np.save(FIXTURES / f"{name}.logmel.npy", logmel)
    print(f"{name}: {len(y)} samples at {SR} Hz -> logmel {logmel.shape}")


def main() -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name, sr in (("chirp22050", 22050), ("chirp48000", 48000)):
        path = FIXTURES / f"{name}.wav"
        sf.write(str(path), synthetic_clip(sr), sr, subtype="PCM_16")
        write_references(name, path)
    if FSDD_CLIP.exists():
        write_references("3_theo_7", FSDD_CLIP)
    else:
        print(f"skipped {FSDD_CLIP}: not found")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mel = librosa.filters.mel(sr=22050, n_fft=512, n_mels=64, fmin=50.0, fmax=16000.0)
    np.save(FIXTURES / "mel-22050-512-64-50-16000.npy", mel.astype(np.float32))
    print(f"mel filterbank {mel.shape}, empty filters: {int((mel.max(axis=1) == 0).sum())}")


if __name__ == "__main__":
    main()
