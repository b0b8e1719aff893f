#!/usr/bin/env python3
"""Checks an ONNX file written by `digits-dist export` and runs it in onnxruntime.

Usage: scripts/onnx-check.py MODEL.onnx FEATURES.npy

FEATURES.npy is float32 [N, 1, mel bins, frames]. Prints one JSON object: the opset, the declared input
and output shapes, and the "logits" and "probabilities" onnxruntime computes for the features.
Fails (exit 1) when onnx.checker.check_model rejects the model. Needs `pip install onnx onnxruntime`.
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime


def shape_of(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[2])
    model_path, features_path = sys.argv[1:]
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    features = np.load(features_path).astype(np.float32)
    session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    logits, probabilities = session.run(["logits", "probabilities"], {"features": features})
    print(json.dumps({
        "opset": [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")][0],
        "inputs": {i.name: shape_of(i) for i in model.graph.input},
        "outputs": {o.name: shape_of(o) for o in model.graph.output},
        "operators": sorted({n.op_type for n in model.graph.node}),
        "logits": logits.tolist(),
        "probabilities": probabilities.tolist(),
    }))


if __name__ == "__main__":
    main()
