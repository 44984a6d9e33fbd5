"""Colour and texture statistics of a picture: cheap numbers that carry emotion beside the CNN.

Brightness, saturation and colourfulness are the classic low-level correlates
of valence and arousal in affective image studies (bright, saturated, colourful
pictures read as pleasant and lively; dark, grey ones as sad or calm), and edge
density is a proxy for visual complexity, an arousal cue. The image-emotion
model (installation.image.emotion) feeds these beside the encoder's embedding.

All statistics are computed on the window the encoder sees (the 224 x 224 centre
crop of the frame scaled to a 256-pixel shorter side, installation.image.preprocess),
shrunk by 2 to 112 x 112 (area interpolation) for speed; each is a float in 0..1
(warmth in -1..1). ``window_stats`` takes such a window; ``frame_stats`` any frame.

    name            definition (R, G, B, pixels in 0..1)
    brightness      mean luma Y = 0.299 R + 0.587 G + 0.114 B
    contrast        standard deviation of Y (x 2, so a black/white half-and-half image is 1)
    saturation      mean HSV saturation (max - min) / max (0 where max = 0)
    saturation_sd   standard deviation of the HSV saturation (x 2)
    colourfulness   Hasler & Suesstrunk (2003): sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2),
                    rg = R - G, yb = (R + G) / 2 - B; divided by sqrt(1.25), clipped to 1 (pure red: 0.3)
    edge_density    share of pixels whose Sobel gradient magnitude of Y exceeds EDGE_THRESHOLD
    warmth          mean (R - B)
    dark            share of pixels with Y < 0.2
    bright          share of pixels with Y > 0.8
"""
from __future__ import annotations

import numpy as np

from installation.image.preprocess import CROP, RESIZE_SHORTER

NAMES = ("brightness", "contrast", "saturation", "saturation_sd", "colourfulness", "edge_density",
         "warmth", "dark", "bright")
WORK_SIZE = 112                 # the window is shrunk to this side before the statistics
EDGE_THRESHOLD = 0.25           # Sobel magnitude of luma (0..1 pixels, 3x3 kernel sums to 4 per unit step)
_CF_MAX = float(np.sqrt(1.25))  # colourfulness of a saturated pure red or blue, in 0..1 pixel units


def window_stats(window: np.ndarray) -> np.ndarray:
    """An RGB uint8 window (any size; the encoder's 224 x 224 crop at run time) -> (len(NAMES),) float32."""
    import cv2

    if window.ndim != 3 or window.shape[2] != 3 or window.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {window.dtype} {window.shape}")
    h, w = window.shape[:2]
    if min(h, w) > WORK_SIZE:
        s = WORK_SIZE / min(h, w)
        window = cv2.resize(window, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    px = window.reshape(-1, 3).astype(np.float32) * (1.0 / 255.0)
    r, g, b = px[:, 0], px[:, 1], px[:, 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    mx = px.max(1)
    mn = px.min(1)
    sat = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-6), 0.0)
    rg = r - g
    yb = 0.5 * (r + g) - b
    cf = np.sqrt(rg.var() + yb.var()) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    grey = y.reshape(window.shape[:2])
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    edges = float(np.mean(gx * gx + gy * gy > EDGE_THRESHOLD ** 2))
    out = (y.mean(), 2 * y.std(), sat.mean(), 2 * sat.std(), min(1.0, cf / _CF_MAX), edges,
           (r - b).mean(), np.mean(y < 0.2), np.mean(y > 0.8))
    return np.asarray(out, dtype=np.float32)


def frame_stats(frame: np.ndarray) -> np.ndarray:
    """An RGB uint8 frame of any size -> the statistics of the encoder's centre window.

    The window is cut at the frame's own resolution (the centre square of side
    shorter side x 224 / 256) and shrunk once, straight to WORK_SIZE.
    """
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {frame.shape}")
    h, w = frame.shape[:2]
    side = max(1, round(min(h, w) * CROP / RESIZE_SHORTER))
    y, x = (h - side) // 2, (w - side) // 2
    return window_stats(frame[y:y + side, x:x + side])


def stats_batch(frames: list[np.ndarray]) -> np.ndarray:
    """Frames -> (N, len(NAMES)) float32."""
    return np.stack([frame_stats(f) for f in frames]).astype(np.float32)
