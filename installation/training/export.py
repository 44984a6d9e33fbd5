"""Export to ONNX: the image encoder, the conditioner and the one-step decoder, with parity checks."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

OPSET = 17


def export_encoder(net: torch.nn.Module, path: Path) -> dict:
    """(N, 3, 224, 224) float32 0..255 RGB 'image' -> (N, D) 'embedding'; checks ORT against torch."""
    import onnxruntime as ort

    path.parent.mkdir(parents=True, exist_ok=True)
    x = torch.rand(2, 3, 224, 224) * 255
    torch.onnx.export(net, (x,), str(path), input_names=["image"], output_names=["embedding"],
                      dynamic_axes={"image": {0: "batch"}, "embedding": {0: "batch"}},
                      opset_version=OPSET, dynamo=False)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.rand(3, 3, 224, 224) * 255
    with torch.no_grad():
        ref = net(x).numpy()
    got = sess.run(None, {"image": x.numpy()})[0]
    err = float(np.abs(got - ref).max())
    if err > 1e-3:
        raise RuntimeError(f"{path}: ONNX encoder differs from torch by {err}")
    return {"inputs": {"image": ["batch", 3, 224, 224]}, "outputs": {"embedding": ["batch", net.dim]},
            "parity_max_abs_err": err}
