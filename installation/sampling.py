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
    p = np.exp(z)
    p /= p.sum(axis=-1, keepdims=True)
    if top_p < 1.0:
        order = np.argsort(-p, axis=-1, kind="stable")
        sorted_p = np.take_along_axis(p, order, axis=-1)
        cum = np.cumsum(sorted_p, axis=-1)
        keep_sorted = (cum - sorted_p) < top_p          # always keeps the most likely event
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=-1)
        p = np.where(keep, p, 0.0)
        p /= p.sum(axis=-1, keepdims=True)
    u = (rng.random(p.shape[0]) if u is None else np.asarray(u, dtype=np.float64))[:, None]
    idx = (np.cumsum(p, axis=-1) < u).sum(axis=-1)
    return np.minimum(idx, p.shape[-1] - 1).astype(np.int64)
