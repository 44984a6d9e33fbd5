"""Loud enough to publish: integrated loudness (ITU-R BS.1770-4, in LUFS) and normalisation to a target.

``integrated_lufs`` K-weights each channel (a high shelf and a high pass, libebur128's coefficients
for any sample rate), takes the mean square in 400 ms blocks every 100 ms, gates them at -70 LUFS
and then 10 LU below their mean, and returns the gated mean. ``normalise`` scales a piece to the
target loudness (-16 LUFS: common for the web and podcasts) unless its sample peak would then pass
``peak_dbfs`` (-1 dBFS), in which case the peak sets the gain. Needs scipy (``lfilter``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _k_weighting(rate: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The two biquads (b, a) of the K-weighting filter at ``rate`` Hz."""
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196   # high shelf
    k = math.tan(math.pi * f0 / rate)
    vh = 10 ** (gain_db / 20)
    vb = vh ** 0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = (np.array([(vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0]),
             np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]))
    f0, q = 38.13547087602444, 0.5003270373238773                                 # high pass
    k = math.tan(math.pi * f0 / rate)
    a0 = 1 + k / q + k * k
    high_pass = (np.array([1.0, -2.0, 1.0]), np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]))
    return [shelf, high_pass]


def integrated_lufs(audio: np.ndarray, rate: int) -> float:
    """BS.1770-4 integrated loudness of float audio (frames, channels) in -1..1; -inf for silence."""
    from scipy.signal import lfilter

    x = np.asarray(audio, np.float64)
    x = x[:, None] if x.ndim == 1 else x
    for b, a in _k_weighting(rate):
        x = lfilter(b, a, x, axis=0)
    block, step = int(round(0.4 * rate)), int(round(0.1 * rate))
    if len(x) < block:
        return -math.inf
    csum = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x * x, axis=0)])
    starts = np.arange(0, len(x) - block + 1, step)
    z = ((csum[starts + block] - csum[starts]) / block).sum(axis=1)     # per block: sum over channels (G = 1)
    with np.errstate(divide="ignore"):
        loud = -0.691 + 10 * np.log10(z)
    z = z[loud > -70.0]                                                  # the absolute gate
    if len(z) == 0:
        return -math.inf
    relative = -0.691 + 10 * math.log10(z.mean()) - 10.0
    z = z[-0.691 + 10 * np.log10(z) > relative]                          # the relative gate
    return -0.691 + 10 * math.log10(z.mean())


@dataclass(frozen=True)
class Normalised:
    """A normalised piece and what was done to it."""
    audio: np.ndarray          # float32 (frames, channels), -1..1
    lufs_before: float
    lufs: float                # its loudness now
    peak_dbfs: float           # its sample peak now
    gain_db: float


def normalise(audio: np.ndarray, rate: int, target_lufs: float = -16.0, peak_dbfs: float = -1.0) -> Normalised:
    """Scale float audio to ``target_lufs``, lowered so the sample peak stays at or under ``peak_dbfs``."""
    x = np.asarray(audio, np.float64)
    before = integrated_lufs(x, rate)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if not math.isfinite(before) or peak <= 0:                           # silence: leave it alone
        return Normalised(x.astype(np.float32), before, before, -math.inf, 0.0)
    gain_db = min(target_lufs - before, peak_dbfs - 20 * math.log10(peak))
    y = x * 10 ** (gain_db / 20)
    return Normalised(y.astype(np.float32), before, before + gain_db, 20 * math.log10(peak) + gain_db, gain_db)
