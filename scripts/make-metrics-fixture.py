#!/usr/bin/env python3
"""Writes Tests/TrainTests/Fixtures/metrics.json: random validation outputs and the metrics sklearn
computes for them, which digits-dist's own metrics must reproduce.  pip install scikit-learn numpy"""
import json, pathlib
import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, roc_auc_score

rng = np.random.default_rng(7)
n, classes = 300, 10
labels = rng.integers(0, classes, n)
logits = rng.normal(size=(n, classes)).astype(np.float32)
logits[np.arange(n), labels] += rng.uniform(0, 3, n).astype(np.float32)  # mostly right, some wrong
logits = np.round(logits, 1)  # rounding makes ties, which the AUC must average
probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
probabilities = probabilities.astype(np.float32)
speakers = [f"sp{s}" for s in rng.integers(0, 6, n)]
predicted = probabilities.argmax(axis=1)
fixture = {
    "probabilities": probabilities.ravel().tolist(),
    "labels": labels.tolist(),
    "speakers": speakers,
    "accuracy": accuracy_score(labels, predicted),
    "macro_roc_auc": roc_auc_score(labels, probabilities.astype(np.float64), multi_class="ovr", average="macro"),
    "confusion": confusion_matrix(labels, predicted, labels=range(classes)).tolist(),
    "per_speaker_accuracy": {s: float(np.mean(predicted[np.array(speakers) == s] == labels[np.array(speakers) == s]))
                             for s in sorted(set(speakers))},
}
out = pathlib.Path(__file__).resolve().parent.parent / "Tests/TrainTests/Fixtures/metrics.json"
out.write_text(json.dumps(fixture))
print(f"wrote {out}: accuracy {fixture['accuracy']:.4f}, macro ROC-AUC {fixture['macro_roc_auc']:.6f}")
