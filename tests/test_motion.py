"""The motion meter on still, noisy, dimming and moving image sequences (bundled artworks, a real video file)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from installation.image.capture import bundled_artworks, read_image
from installation.image.motion import MotionMeter, changed_share, grey_small

FPS = 15
W, H = 320, 240


def _room(seed: int = 0) -> np.ndarray:
    """A 'room': a bundled photograph at camera size."""
    img = read_image(bundled_artworks() / "03_coffee_cup.jpg")
    return cv2.resize(img, (W, H), interpolation=cv2.INTER_AREA)


def _noisy(frame: np.ndarray, rng: np.random.Generator, sigma: float = 3.0) -> np.ndarray:
    """Camera sensor noise: Gaussian, sigma in grey levels."""
    return np.clip(frame + rng.normal(0, sigma, frame.shape), 0, 255).astype(np.uint8)


def _walkers(background: np.ndarray, t: float, n: int, crossing_s: float = 3.0) -> np.ndarray:
    """``n`` person-sized dark figures (a sixth of the width, half the height) crossing the frame in ``crossing_s``."""
    frame = background.copy()
    fw, fh = W // 6, H // 2
    for k in range(n):
        phase = (t / crossing_s + k / max(n, 1)) % 1.0
        x = int(-fw + phase * (W + fw))
        y = H // 3 + (k % 2) * H // 8
        x0, x1 = max(0, x), min(W, x + fw)
        if x1 > x0:
            frame[y:y + fh, x0:x1] = (40 + 30 * k, 35, 50)
    return frame


def _run(meter: MotionMeter, frames) -> list[float]:
    return [meter.update(i / FPS, f) for i, f in enumerate(frames)]


def test_still_noisy_room_reads_near_zero():
    rng = np.random.default_rng(1)
    room = _room()
    levels = _run(MotionMeter(1.0), (_noisy(room, rng) for _ in range(60)))
    assert max(levels) < 0.05


def test_global_brightness_change_is_not_motion():
    room = _room().astype(np.float32)
    frames = [np.clip(room * (1.0 - 0.4 * i / 60), 0, 255).astype(np.uint8) for i in range(60)]   # a lamp dims
    assert max(_run(MotionMeter(1.0), frames)) < 0.1


def test_one_walker_reads_moderate_and_more_walkers_read_more():
    rng = np.random.default_rng(2)
    room = _room()
    got = {}
    for n in (1, 3):
        meter = MotionMeter(1.0)
        _run(meter, (_noisy(_walkers(room, i / FPS, n), rng) for i in range(6 * FPS)))
        got[n] = meter.level
    assert 0.2 < got[1] < 0.7, got
    assert got[3] > got[1] + 0.15, got
    assert got[3] <= 1.0


def test_panning_camera_over_an_artwork_reads_high():
    """A real moving image: a window sliding over a bundled painting, 4 source pixels per frame."""
    art = read_image(bundled_artworks() / "06_starry_night_van_gogh.jpg")
    frames = [np.ascontiguousarray(art[40:40 + H, 4 * i:4 * i + W]) for i in range(60)]
    assert min(f.shape[1] for f in frames) == W
    meter = MotionMeter(0.5)
    _run(meter, frames)
    assert meter.level > 0.7


def test_level_decays_with_the_time_constant_after_motion_stops():
    rng = np.random.default_rng(3)
    room = _room()
    meter = MotionMeter(1.0)
    frames = [_noisy(_walkers(room, i / FPS, 3), rng) for i in range(4 * FPS)]
    _run(meter, frames)
    high = meter.level
    t0 = len(frames) / FPS
    for i in range(1, 3 * FPS + 1):                     # 3 time constants of a still room
        meter.update(t0 + i / FPS, _noisy(room, rng))
    assert meter.level < 0.1 * high + 0.03


def test_frame_rate_does_not_change_the_scale():
    room = _room()
    levels = []
    for fps in (10, 30):
        meter = MotionMeter(1.0)
        for i in range(6 * fps):
            meter.update(i / fps, _walkers(room, i / fps, 2))
        levels.append(meter.level)
    assert levels[0] == pytest.approx(levels[1], abs=0.15)


def test_real_video_file_of_walkers(tmp_path):
    """Frames written as MJPG and decoded again (real compression noise)."""
    path = tmp_path / "walkers.avi"
    room = _room()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H))
    assert writer.isOpened()
    n_still = 3 * FPS
    for i in range(6 * FPS):
        frame = room if i < n_still else _walkers(room, i / FPS, 2)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    reader = cv2.VideoCapture(str(path))
    meter, levels = MotionMeter(0.5), []
    while True:
        ok, bgr = reader.read()
        if not ok:
            break
        levels.append(meter.update(len(levels) / FPS, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
    reader.release()
    assert len(levels) == 6 * FPS
    assert levels[n_still - 1] < 0.05          # still part
    assert levels[-1] > 0.3                    # people moving


def test_first_frame_size_change_and_time_going_backwards_keep_the_level():
    meter = MotionMeter(1.0)
    a = np.zeros((120, 160, 3), np.uint8)
    b = np.full((120, 160, 3), 255, np.uint8)
    assert meter.update(0.0, a) == 0.0
    assert meter.update(0.0, b) == 0.0                     # no time passed
    assert meter.update(0.1, np.zeros((90, 160, 3), np.uint8)) == 0.0    # new frame size: new reference
    with pytest.raises(ValueError):
        MotionMeter(0.0)
    with pytest.raises(ValueError):
        meter.update(0.2, np.zeros((90, 160), np.uint8))


def test_changed_share_known_answers():
    a = np.zeros((10, 10), np.float32)
    b = a.copy()
    b[:3] = 0.5                                             # 30% of the pixels change a lot
    assert changed_share(a, b) == pytest.approx(0.3)
    assert changed_share(a, a + 0.3) == 0.0                 # a uniform shift is no motion
    g = grey_small(np.full((480, 640, 3), 255, np.uint8))
    assert g.shape == (48, 64) and np.allclose(g, 1.0)
