#!/usr/bin/env python3
"""PyTorch reference for digits-dist's FSDD recipe: train on four speakers, report the held-out speaker's
accuracy. Same model (torchvision-layout ResNet-18, 1 input channel, `--width` channels in the first
stage), same step (BCE-with-logits on one-hot targets, AdamW lr 1e-3, cosine to 0 per step, no warm-up,
global batch 32, drop_last, reshuffled each epoch) and the same data path as `digits-dist train`:

- features: librosa 0.11 `power_to_db(melspectrogram(y, sr=22050, n_fft=2048, hop_length=512,
  n_mels=128, fmin=50, fmax=16000))` of the whole clip (`librosa.load(path, sr=22050)`), cached in
  `--cache` (an .npz) so repeated runs skip librosa;
- training input: a random 44-frame (1 s) crop, start uniform in [0, frames - 44]; a shorter clip centred
  in the window (`--short-offset`), the rest padded with the clip's minimum (its silence level), no
  normalisation;
- evaluation: each held-out clip cut into 44-frame chunks (starts 0, 44, 88, ...; the last one padded the
  same way, a short clip centred), softmax averaged over the chunks, argmax.

Options prefixed "variant" change one part of the pipeline, to see what other PyTorch+librosa pipelines
would score: `--weight-decay 0.01` (AdamW's default), `--short-offset start` or `random` (a short clip at the
window's start, or at a random place in training), `--pad zero` (pad with 0 dB), `--crop audio` (crop 1 s of zero-padded audio,
log-mel of the crop with top_db relative to it; evaluate on the first 1 s of audio).

`--augment` trains with digits-dist's defaults of 2026-12-07 (configs/fsdd.yaml with
`augmentation.reverb_probability=0 architecture.subspectral_bands=1`: no reverberation, plain BatchNorm)
written again here in numpy, to see whether PyTorch gets more out of them than we do: a short clip moved by up to ± 6 frames (0.15 s) around
the centre, the crop stretched in time and its mel axis warped by 1 ± U(0.1) (linear interpolation, edges
held), ± 6 dB gain, on half the crops white noise at 10-40 dB SNR (power exponentially distributed around
the crop's mean power over the SNR), then `PerClip` (minus the clip's mean, over its std, both moved by what
the augmentations did to the clip's frames), then two frequency masks of up to 16 bands and two time masks
of up to 6 frames filled with the crop's mean. Evaluation standardises each chunk by its whole clip's mean
and std and weights a long clip's chunks by their mean power (`prediction.chunk_weighting: Energy`).

    pip install torch librosa
    python3 scripts/train-fsdd-pytorch.py --data /path/to/free-spoken-digit-dataset/recordings \\
        --val-speaker theo --seed 1
    # pytorch: held-out theo accuracy 0.8180   (seed 1; seeds 1-6 gave 0.678-0.826, mean 0.779)

The ResNet class comes from bench-train-pytorch.py in this script's folder.
"""
import argparse
import glob
import importlib
import math
import os
import re
import sys
import time

SAMPLE_RATE = 22050
N_FFT, HOP, N_MELS, FMIN, FMAX = 2048, 512, 128, 50.0, 16000.0
CROP_FRAMES = 1 + SAMPLE_RATE // HOP  # 44: centred frames of 1 s
CROP_SAMPLES = SAMPLE_RATE


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder of FSDD WAVs {digit}_{speaker}_{index}.wav")
    parser.add_argument("--val-speaker", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--cache", default="/tmp/fsdd-librosa-logmel.npz",
                        help="features (and resampled audio) of every clip; rebuilt when the file list changes")
    parser.add_argument("--weight-decay", type=float, default=0.0, help="variant: AdamW weight decay")
    parser.add_argument("--short-offset", choices=["center", "start", "random"], default="center",
                        help="where a clip shorter than the crop sits in the window (digits-dist's "
                             "audio.short_clip_position; random: anywhere in training, centred in evaluation)")
    parser.add_argument("--pad", choices=["min", "zero"], default="min",
                        help="variant: pad value past the clip's end (clip minimum, or 0 dB)")
    parser.add_argument("--augment", action="store_true",
                        help="digits-dist's default speaker augmentations and PerClip normalisation (see above)")
    parser.add_argument("--crop", choices=["features", "audio"], default="features",
                        help="variant: crop the log-mel of the whole clip, or crop 1 s of audio and take its log-mel")
    parsed = parser.parse_args()
    if parsed.augment and parsed.crop == "audio":
        parser.error("--augment augments log-mel crops: it cannot be combined with --crop audio")
    return parsed


args = parse_args()
for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(name, str(args.threads))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
ResNet = importlib.import_module("bench-train-pytorch").ResNet  # noqa: E402

NAME = re.compile(r"^(\d)_([A-Za-z0-9]+)_(\d+)\.wav$")


def log_mel(y):
    import librosa
    return librosa.power_to_db(librosa.feature.melspectrogram(
        y=y, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, fmin=FMIN, fmax=FMAX)).astype(np.float32)


def load_dataset(folder, cache):
    paths = sorted(p for p in glob.glob(os.path.join(folder, "*.wav")) if NAME.match(os.path.basename(p)))
    names = [os.path.basename(p) for p in paths]
    if os.path.exists(cache):
        data = np.load(cache)
        if list(data["names"]) == names:
            return names, data
    import warnings
    import librosa
    warnings.filterwarnings("ignore", message="Empty filters detected")
    start = time.perf_counter()
    features, audio = [], []
    for path in paths:
        y = librosa.load(path, sr=SAMPLE_RATE)[0]
        audio.append(y.astype(np.float32))
        features.append(log_mel(y))
    frames = np.array([f.shape[1] for f in features], dtype=np.int64)
    samples = np.array([len(a) for a in audio], dtype=np.int64)
    np.savez(cache, names=np.array(names), frames=frames, samples=samples,
             features=np.concatenate(features, axis=1), audio=np.concatenate(audio))
    print(f"features of {len(paths)} clips cached in {cache} ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return names, np.load(cache)


class Clips:
    def __init__(self, names, data):
        self.frames = data["frames"]
        self.samples = data["samples"]
        self.frame_offsets = np.concatenate([[0], np.cumsum(self.frames)])
        self.sample_offsets = np.concatenate([[0], np.cumsum(self.samples)])
        self.features = data["features"]
        self.audio = data["audio"]
        parts = [NAME.match(n).groups() for n in names]
        self.labels = np.array([int(p[0]) for p in parts], dtype=np.int64)
        self.speakers = np.array([p[1] for p in parts])

    def logmel(self, i):
        return self.features[:, self.frame_offsets[i]:self.frame_offsets[i + 1]]

    def wave(self, i):
        return self.audio[self.sample_offsets[i]:self.sample_offsets[i + 1]]


def window(mel, start, offset, pad):
    """44 frames of `mel` from `start`, placed at `offset` in the window, the rest padded."""
    out = np.full((N_MELS, CROP_FRAMES), mel.min() if pad == "min" else 0.0, dtype=np.float32)
    piece = mel[:, start:start + CROP_FRAMES - offset]
    out[:, offset:offset + piece.shape[1]] = piece
    return out


def audio_window(y, start):
    out = np.zeros(CROP_SAMPLES, dtype=np.float32)
    piece = y[start:start + CROP_SAMPLES]
    out[:len(piece)] = piece
    mel = log_mel(out)
    assert mel.shape[1] == CROP_FRAMES
    return mel


def training_crop(clips, i, rng):
    if args.augment:
        return augmented_crop(clips, i, rng)
    if args.crop == "audio":
        n = clips.samples[i]
        start = int(rng.integers(0, n - CROP_SAMPLES + 1)) if n > CROP_SAMPLES else 0
        return audio_window(clips.wave(i), start)
    mel = clips.logmel(i)
    frames = mel.shape[1]
    if frames > CROP_FRAMES:
        return window(mel, int(rng.integers(0, frames - CROP_FRAMES + 1)), 0, args.pad)
    if args.short_offset == "random":
        return window(mel, 0, int(rng.integers(0, CROP_FRAMES - frames + 1)), args.pad)
    return window(mel, 0, short_offset(frames), args.pad)


TIME_SHIFT_FRAMES, TEMPO, VOCAL_TRACT, GAIN_DB = 6, 0.1, 0.1, 6.0
NOISE_PROBABILITY, SNR_DB = 0.5, (10.0, 40.0)
FREQUENCY_MASKS, FREQUENCY_MASK_BINS, TIME_MASKS, TIME_MASK_FRAMES = 2, 16, 2, 6


def stretch(crop, axis, factor):
    """out(i) = in(i / factor) along `axis` by linear interpolation, the last index held."""
    length = crop.shape[axis]
    source = np.minimum(length - 1, np.arange(length) / factor)
    lower = source.astype(np.int64)
    upper = np.minimum(length - 1, lower + 1)
    weight = (source - lower).astype(np.float32)
    if axis == 1:
        return crop[:, lower] + weight * (crop[:, upper] - crop[:, lower])
    return crop[lower] + weight[:, None] * (crop[upper] - crop[lower])


def mask_span(maximum, size, rng):
    width = int(rng.integers(0, min(maximum, size) + 1))
    start = int(rng.integers(0, size - width + 1))
    return slice(start, start + width)


def augmented_crop(clips, i, rng):
    """digits-dist's default training crop (`--augment`)."""
    mel = clips.logmel(i)
    frames = mel.shape[1]
    if frames > CROP_FRAMES:
        start, offset = int(rng.integers(0, frames - CROP_FRAMES + 1)), 0
    else:
        start = 0
        offset = short_offset(frames) + int(rng.integers(-TIME_SHIFT_FRAMES, TIME_SHIFT_FRAMES + 1))
        offset = max(0, min(CROP_FRAMES - frames, offset))
    crop = window(mel, start, offset, "min")
    count = min(CROP_FRAMES - offset, frames - start)
    before = mel[:, start:start + count]
    crop = stretch(crop, 1, 1 + TEMPO * rng.uniform(-1, 1))
    crop = stretch(crop, 0, 1 + VOCAL_TRACT * rng.uniform(-1, 1))
    crop = crop + np.float32(GAIN_DB * rng.uniform(-1, 1))
    if rng.random() < NOISE_PROBABILITY:
        power = np.power(10.0, crop / 10.0)
        level = power.mean() * 10 ** (-rng.uniform(*SNR_DB) / 10)
        crop = 10 * np.log10(power + level * rng.exponential(size=crop.shape))
    after = crop[:, offset:offset + count]
    mean = mel.mean() + after.mean() - before.mean()
    deviation = mel.std() * after.std() / max(before.std(), 1e-3)
    crop = (crop - mean) / max(deviation, 1e-3)
    fill = crop.mean()
    for _ in range(FREQUENCY_MASKS):
        crop[mask_span(FREQUENCY_MASK_BINS, N_MELS, rng), :] = fill
    for _ in range(TIME_MASKS):
        crop[:, mask_span(TIME_MASK_FRAMES, CROP_FRAMES, rng)] = fill
    return crop.astype(np.float32)


def short_offset(frames):
    """Where a clip of `frames` (< the crop) starts in the window, as digits-dist's audio.short_clip_position."""
    return 0 if args.short_offset == "start" else max(0, (CROP_FRAMES - frames) // 2)


def evaluation_chunks(clips, i):
    if args.crop == "audio":
        return [audio_window(clips.wave(i), 0)]
    mel = clips.logmel(i)
    chunks = [window(mel, start, short_offset(mel.shape[1]), args.pad) for start in chunk_starts(mel)]
    if args.augment:
        chunks = [(chunk - mel.mean()) / max(mel.std(), 1e-3) for chunk in chunks]
    return chunks


def chunk_starts(mel):
    """Inference method "Fix": chunks start at 0, 44, 88, ... while inside the clip (digits-dist's chunkStarts)."""
    return range(0, max(mel.shape[1], 1), CROP_FRAMES)


def chunk_weights(clips, i):
    """Each chunk's share of the clip's prediction: equal, or by its mean power with `--augment`."""
    mel = clips.logmel(i)
    if not args.augment:
        return [1.0] * len(chunk_starts(mel))
    powers = [np.power(10.0, mel[:, s:s + CROP_FRAMES] / 10.0).mean() for s in chunk_starts(mel)]
    return [p / sum(powers) for p in powers]


@torch.no_grad()
def evaluate(model, clips, indices):
    model.eval()
    chunks, owner, weights = [], [], []
    for k, i in enumerate(indices):
        pieces = evaluation_chunks(clips, i)
        chunks += pieces
        owner += [k] * len(pieces)
        weights += chunk_weights(clips, i)
    inputs = torch.from_numpy(np.stack(chunks).astype(np.float32))[:, None]
    probabilities = torch.cat([F.softmax(model(inputs[s:s + 256]), dim=1) for s in range(0, len(inputs), 256)])
    probabilities = probabilities * torch.tensor(weights, dtype=torch.float32)[:, None]
    summed = torch.zeros(len(indices), 10).index_add_(0, torch.tensor(owner), probabilities)
    predictions = summed.argmax(dim=1).numpy()
    model.train()
    return float((predictions == clips.labels[indices]).mean())


def main():
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    names, data = load_dataset(args.data, args.cache)
    clips = Clips(names, data)
    train = np.flatnonzero(clips.speakers != args.val_speaker)
    held_out = np.flatnonzero(clips.speakers == args.val_speaker)
    if len(held_out) == 0:
        sys.exit(f"no clips of speaker {args.val_speaker!r}; speakers: {sorted(set(clips.speakers))}")

    model = ResNet("resnet18", args.width).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = len(train) // args.batch
    total = steps_per_epoch * args.epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / max(total, 1))))
    step = 0
    for epoch in range(args.epochs):
        order = rng.permutation(train)
        losses = []
        for b in range(steps_per_epoch):
            batch = order[b * args.batch:(b + 1) * args.batch]
            inputs = torch.from_numpy(np.stack([training_crop(clips, i, rng) for i in batch]))[:, None]
            targets = F.one_hot(torch.from_numpy(clips.labels[batch]), 10).float()
            optimizer.zero_grad(set_to_none=True)
            loss = F.binary_cross_entropy_with_logits(model(inputs), targets)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            losses.append(loss.item())
        print(f"epoch {epoch + 1}/{args.epochs}: loss {np.mean(losses):.4f}, "
              f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
    accuracy = evaluate(model, clips, held_out)
    print(f"pytorch: held-out {args.val_speaker} accuracy {accuracy:.4f}")
    print(f"{step} steps, {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
