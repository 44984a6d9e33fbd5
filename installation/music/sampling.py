"""Sampling the next event from logits: temperature, top-p (nucleus), a seeded RNG.

Plain numpy, batched, shared by the live engine, offline render and the
export parity check (torch and ONNX logits go through this same code).
"""
from __future__ import annotations

import numpy as np


def sample(logits: np.ndarray, rng: np.random.Generator | None, temperature: float = 1.0, top_p: float = 1.0,
           u: np.ndarray | None = None) -> np.ndarray:
    """(N, V) logits -> (N,) int64 event indices.

    temperature 0 means greedy (argmax). top_p < 1 keeps the smallest set of
    most likely events whose probability reaches top_p. The uniform draws come
    from ``rng`` (one per row), or are given as ``u`` (e.g. one RNG per row, so
    a row's music does not depend on what else is in the batch).
    """
    logits = np.asarray(logits, dtype=np.float64)
    if temperature <= 0:
        return logits.argmax(axis=-1)
    z = logits / temperature
    z -= z.max(axis=-1, keepdims=True)
    p = np.exp(z)                                       # unnormalised: the thresholds scale by the row total
    if top_p < 1.0:
        total = p.sum(axis=-1, keepdims=True)
        sorted_p = np.sort(p, axis=-1)[:, ::-1]
        cum = np.cumsum(sorted_p, axis=-1)
        kept = ((cum - sorted_p) < top_p * total).sum(axis=-1)      # always >= 1: the most likely event
        cutoff = sorted_p[np.arange(len(p)), kept - 1]
        p = np.where(p >= cutoff[:, None], p, 0.0)
    u = rng.random(p.shape[0]) if u is None else np.asarray(u, dtype=np.float64)
    cum = np.cumsum(p, axis=-1)
    idx = (cum < (u * cum[:, -1])[:, None]).sum(axis=-1)
    return np.minimum(idx, p.shape[-1] - 1).astype(np.int64)
