"""Test media written on the spot: solid-colour images and real video files (cv2.VideoWriter)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

import cv2
import numpy as np

RGB = tuple[int, int, int]
Picture = Union[RGB, np.ndarray]   # a colour, or an RGB uint8 image

# Codecs that opencv-python-headless can both write and read back, by file suffix.
CODECS = {".avi": "MJPG", ".mp4": "mp4v"}


def _rgb_image(picture: Picture, size: tuple[int, int]) -> np.ndarray:
    """An RGB uint8 image of ``size`` (width, height) from a colour or an image."""
    width, height = size
    if isinstance(picture, np.ndarray):
        return cv2.resize(picture, (width, height), interpolation=cv2.INTER_AREA)
    return np.full((height, width, 3), picture, dtype=np.uint8)


def make_image(path: Path, color: Picture, size: tuple[int, int] = (64, 48)) -> Path:
    """Write a solid-colour (or given) RGB image to ``path``; the suffix picks the format."""
    bgr = cv2.cvtColor(_rgb_image(color, size), cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), bgr):
        raise RuntimeError(f"cv2.imwrite could not write {path}")
    return path


def make_video(path: Path, scenes: Sequence[tuple[Picture, float]], fps: int = 10,
               size: tuple[int, int] = (160, 120)) -> Path:
    """Write a real video file: each scene (colour or RGB image, seconds) for round(seconds * fps) frames.

    The suffix picks the codec (.avi: MJPG, .mp4: mp4v); the file is read back
    to check that it holds every frame.
    """
    path = Path(path)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*CODECS[path.suffix]), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"cv2.VideoWriter cannot write {path}")
    total = 0
    for picture, seconds in scenes:
        bgr = cv2.cvtColor(_rgb_image(picture, size), cv2.COLOR_RGB2BGR)
        for _ in range(round(seconds * fps)):
            writer.write(bgr)
            total += 1
    writer.release()
    reader = cv2.VideoCapture(str(path))
    count = 0
    while reader.grab():
        count += 1
    reader.release()
    if count != total:
        raise RuntimeError(f"{path}: wrote {total} frames but read back {count}")
    return path


def dominant(image: np.ndarray) -> str:
    """'red', 'green' or 'blue': the strongest channel of an RGB image on average."""
    return ("red", "green", "blue")[int(np.argmax(image.reshape(-1, 3).mean(axis=0)))]


def make_people_video(path: Path, picture: np.ndarray, seconds: float = 60.0, fps: int = 15,
                      size: tuple[int, int] = (320, 240), seed: int = 0,
                      then: np.ndarray | None = None, cut_s: float = 0.0) -> Path:
    """A real video of people moving in front of one still picture: ``picture`` all along (or,
    with ``then``, that picture from ``cut_s`` on), with one to three figures at a time (a head
    and a body in drab clothes, a sixth to a quarter of the width, half to nine tenths of the
    height) walking across at 1.5-6 s per crossing, some stopping a while to look; seeded, so
    the same arguments write the same frames."""
    rng = np.random.default_rng(seed)
    width, height = size
    backs = [cv2.cvtColor(_rgb_image(p, size), cv2.COLOR_RGB2BGR) for p in (picture, picture if then is None else then)]
    n = round(seconds * fps)
    figures = []          # (start frame, x0, x1, frames to cross, pause frame, pause frames, w, h, colour)
    start = 0
    while start < n:
        w = int(width * rng.uniform(1 / 6, 1 / 4))
        h = int(height * rng.uniform(0.5, 0.9))
        left = rng.random() < 0.5
        x0, x1 = (-w, width) if left else (width, -w)
        cross = int(rng.uniform(1.5, 6.0) * fps)
        pause_at, pause = int(rng.uniform(0.3, 0.7) * cross), int(rng.uniform(0, 3) * fps) * (rng.random() < 0.4)
        colour = tuple(int(c) for c in rng.integers(20, 140, 3))
        figures.append((start, x0, x1, cross, pause_at, pause, w, h, colour))
        start += int(rng.uniform(0.3, 2.5) * fps)       # the next one comes along
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*CODECS[Path(path).suffix]), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"cv2.VideoWriter cannot write {path}")
    for i in range(n):
        frame = backs[int(then is not None and i >= round(cut_s * fps))].copy()
        for start, x0, x1, cross, pause_at, pause, w, h, colour in figures:
            k = i - start
            if k < 0 or k >= cross + pause:
                continue
            k = k if k < pause_at else (pause_at if k < pause_at + pause else k - pause)
            x = int(x0 + (x1 - x0) * k / cross)
            top = height - h
            head = max(4, w // 3)
            cv2.circle(frame, (x + w // 2, top + head // 2), head // 2, (90, 110, 150), -1)
            cv2.rectangle(frame, (x, top + head), (x + w, height), colour, -1)
        writer.write(frame)
    writer.release()
    return Path(path)
