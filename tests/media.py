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
