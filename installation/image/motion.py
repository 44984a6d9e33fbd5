"""How much is moving in front of a live camera: frame differencing, smoothed, as a number in [0, 1].

Motion raises the music's arousal on live cameras (a still room plays calmer,
visitors moving make it livelier); it is not used for still images and folders.

Method, per frame:

1. The frame is shrunk to WIDTH = 64 pixels wide (area interpolation: this also
   averages away most sensor noise) and made grey (luma, 0..1).
2. The difference from the previous frame has its median removed (a global
   brightness change, such as auto-exposure or a lamp dimming, is not motion),
   and ``changed`` is the share of pixels that still differ by more than
   THRESHOLD (0.04, about 10 grey levels).
3. ``changed`` is scaled to a frame interval of REFERENCE_DT = 0.1 s (a camera
   at 30 fps sees a third of the per-frame change of one at 10 fps), then mapped
   to ``level = 1 - exp(-changed / SCALE)``, SCALE = 0.08.
4. ``level`` is smoothed exponentially with the meter's time constant.

Scale (measured in tests/test_motion.py and on the bundled artworks): a still
scene with camera noise reads below 0.05; one person-sized figure (a sixth of
the width, half the height) crossing the frame in 3 seconds reads about 0.3-0.5;
several figures or a panning camera 0.7-1. ``level`` = 0.5 is about 5.5% of the
pixels changing per 0.1 s.
"""
from __future__ import annotations

import math

import numpy as np

WIDTH = 64
THRESHOLD = 0.04
REFERENCE_DT = 0.1
SCALE = 0.08
MAX_DT = 0.5            # a longer gap (a stall, a paused source) counts as this long


def grey_small(frame_rgb: np.ndarray, width: int = WIDTH) -> np.ndarray:
    """An RGB uint8 frame -> a (h, width) float32 luma image in 0..1, aspect kept."""
    import cv2

    if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB frame (H, W, 3), got {frame_rgb.shape}")
    h, w = frame_rgb.shape[:2]
    small = cv2.resize(frame_rgb, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32) * (1.0 / 255.0)


def changed_share(prev: np.ndarray, cur: np.ndarray, threshold: float = THRESHOLD) -> float:
    """Share of pixels that changed by more than ``threshold``, the global brightness shift removed."""
    d = cur - prev
    d -= np.median(d)
    return float(np.mean(np.abs(d) > threshold))


class MotionMeter:
    """Smoothed motion of a frame sequence: ``update(t, frame)`` -> level in [0, 1].

    ``time_constant_s`` is the exponential smoothing time constant: after motion
    stops the level falls to 37% in one time constant, 5% in three.
    """

    def __init__(self, time_constant_s: float = 2.0):
        if not time_constant_s > 0:
            raise ValueError(f"time_constant_s must be positive, got {time_constant_s}")
        self.time_constant_s = float(time_constant_s)
        self.level = 0.0
        self.instant = 0.0                      # the last unsmoothed level
        self._prev: np.ndarray | None = None
        self._t: float | None = None

    def reset(self) -> None:
        """Forget the previous frame and the smoothed level (a new source)."""
        self.level, self.instant, self._prev, self._t = 0.0, 0.0, None, None

    def update(self, t: float, frame_rgb: np.ndarray) -> float:
        """Feed the frame shown at time ``t`` (seconds, any origin, increasing) -> the smoothed level."""
        cur = grey_small(frame_rgb)
        prev, t_prev = self._prev, self._t
        self._prev, self._t = cur, t
        if prev is None or prev.shape != cur.shape or t_prev is None or t <= t_prev:
            return self.level                   # first frame, a new frame size, or no time passed
        dt = min(t - t_prev, MAX_DT)
        changed = changed_share(prev, cur) * (REFERENCE_DT / dt)
        self.instant = 1.0 - math.exp(-changed / SCALE)
        alpha = 1.0 - math.exp(-dt / self.time_constant_s)
        self.level += alpha * (self.instant - self.level)
        return self.level
