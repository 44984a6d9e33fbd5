"""Numbers are smoothed, scene changes are found, conditioning crossfades.

Pure numpy, no threads; every call is given the time (seconds, monotonic).
Vectors are float32, of any length (1280-d embeddings, 64..256-d conditioning).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from installation.image.motion import THRESHOLD, grey_small


@dataclass(frozen=True)
class SceneConfig:
    """How embeddings are smoothed and when they count as a new scene."""
    smoothing_s: float = 1.5        # time constant of the exponential smoothing of embeddings
    change_threshold: float = 0.25  # cosine distance (new embedding vs the smoothed one) at or above which it is a different scene
    change_frames: int = 2          # that many consecutive distant embeddings confirm a change (one glitch frame is not a scene change)
    crossfade_s: float = 2.0        # conditioning glides from the old to the new scene over this long
    watch_fps: float = 30.0         # frames looked at per second for the cheap change signal (live: the newest frame; files: media time)
    cut_share: float = 0.6          # share of a frame's pixels that must differ from the scene's references for a new picture (CutWatch)
    steady_share: float = 0.1       # fast confirmation: at most this share differs between the first distant frame and the next
    confirm_gap_s: float = 0.03     # fast confirmation: the second frame is at least this long after the first


@dataclass(frozen=True)
class SceneUpdate:
    """What one embedding did: the smoothed embedding, whether it confirmed a scene change,
    the current scene number and the embedding's cosine distance from the smoothed one before it."""
    smoothed: np.ndarray
    changed: bool
    scene_id: int
    distance: float


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    """1 - cos(angle between a and b), in 0..2; a zero vector is at distance 1 from anything but another zero."""
    a64, b64 = a.astype(np.float64, copy=False), b.astype(np.float64, copy=False)
    na, nb = float(np.linalg.norm(a64)), float(np.linalg.norm(b64))
    if na == 0.0 or nb == 0.0:
        return 0.0 if na == nb else 1.0
    return 1.0 - float(np.dot(a64, b64)) / (na * nb)


class SceneTracker:
    """Exponentially smooths embeddings and finds scene changes.

    The first embedding starts scene 0 (not reported as a change). An embedding
    at distance >= change_threshold from the smoothed one is "distant"; distant
    embeddings are not blended in, so one glitch frame leaves the smoothed value
    as it was. ``change_frames`` distant embeddings in a row confirm a change: the
    smoother restarts from the latest embedding and scene_id increments.
    """

    def __init__(self, config: SceneConfig = SceneConfig()):
        self.config = config
        self._smoothed: np.ndarray | None = None
        self._t = 0.0               # time of the last embedding blended into the smoothed one
        self._distant = 0           # consecutive distant embeddings so far
        self.scene_id = 0

    def update(self, t: float, embedding: np.ndarray, cut: bool = True, confirm: bool = True) -> SceneUpdate:
        """Take one embedding seen at time ``t``. ``cut``: the picture itself changed like a new one
        (CutWatch.is_cut); a distant embedding of a picture that did not (people in front of it) is
        smoothed in like a near one. ``confirm``: this frame may confirm a change (CutWatch.confirms)."""
        x = np.array(embedding, dtype=np.float32)          # a copy: the caller may reuse its buffer
        x.setflags(write=False)
        s = self._smoothed
        if s is None:
            return self._restart(t, x, changed=False, distance=0.0)
        if x.shape != s.shape:
            raise ValueError(f"embedding shape {x.shape} differs from the earlier {s.shape}")
        distance = cosine_distance(x, s)
        if distance >= self.config.change_threshold and cut:
            self._distant += 1
            if self._distant >= self.config.change_frames and confirm:
                self.scene_id += 1
                return self._restart(t, x, changed=True, distance=distance)
            return SceneUpdate(s, False, self.scene_id, distance)
        self._distant = 0
        dt = max(0.0, t - self._t)
        tau = self.config.smoothing_s
        alpha = 1.0 if tau <= 0 else 1.0 - math.exp(-dt / tau)
        s = s + np.float32(alpha) * (x - s)
        s.setflags(write=False)
        self._smoothed, self._t = s, t
        return SceneUpdate(s, False, self.scene_id, distance)

    @property
    def pending(self) -> int:
        """Distant embeddings in a row so far (0: the last embedding belonged to the scene)."""
        return self._distant

    def _restart(self, t: float, x: np.ndarray, *, changed: bool, distance: float) -> SceneUpdate:
        self._smoothed, self._t, self._distant = x, t, 0
        return SceneUpdate(x, changed, self.scene_id, distance)

    @property
    def smoothed(self) -> np.ndarray | None:
        """The current smoothed embedding (read-only), None before the first update."""
        return self._smoothed


class CutWatch:
    """The cheap change signal: whether the picture itself changed, and which frames to embed at once.

    Every frame looked at is shrunk to a grey thumbnail (motion.grey_small, 64 px
    wide). The scene's references are the per-pixel median of the thumbnails of
    its last ``keep`` embedded frames (a background: a figure that walks through
    leaves it) and a thumbnail every ``snapshot_s`` of its last ``snapshots``
    (a crowd that stood long enough to enter the median is absent from some).
    A frame is a *cut* when at least ``cut_share`` of its pixels differ from
    every reference by more than the motion meter's threshold.
    Measured on the bundled artworks shown on a 320x240 camera: one artwork
    against another differs by 0.87-0.99; people moving in front of one
    (bench_false_changes.py) by 0.18-0.31 (median), 0.70 at worst. Only a
    distant embedding of a cut counts toward a change of scene
    (SceneTracker.update's ``cut``; others are smoothed in), and the frame that
    confirms one must hold still against the pending distant frame (``confirm``).
    A cost: two pictures alike in more than 40% of their grey thumbnail are
    one scene, however far apart their embeddings.

    A frame is embedded at once, between the regular embeddings, when

    - it is a cut and no change is pending, or
    - it is a cut, one distant embedding is pending, and it is at least
      ``confirm_gap_s`` after that distant frame and differs from it by at most
      ``steady_share`` (the new view holds still): its embedding, distant too,
      confirms the change about two frames after the picture changed.
    """

    def __init__(self, config: SceneConfig = SceneConfig(), keep: int = 15, snapshots: int = 8,
                 snapshot_s: float = 2.0):
        self.config = config
        self.snapshot_s = snapshot_s
        self._recent: deque[np.ndarray] = deque(maxlen=keep)
        self._snapshots: deque[tuple[float, np.ndarray]] = deque(maxlen=snapshots)
        self._ref: np.ndarray | None = None
        self._candidate: tuple[float, np.ndarray] | None = None   # (t, thumbnail) of the pending distant frame

    @staticmethod
    def thumbnail(frame_rgb: np.ndarray) -> np.ndarray:
        return grey_small(frame_rgb)

    @staticmethod
    def _share(a: np.ndarray, b: np.ndarray) -> float:
        """Share of pixels that differ by more than the motion meter's threshold. No brightness shift is
        removed: with figures over half the frame the median shift is theirs, and the rest would count."""
        return 1.0 if a.shape != b.shape else float(np.mean(np.abs(b - a) > THRESHOLD))

    def is_cut(self, thumb: np.ndarray) -> bool:
        """Does this frame differ from the scene's reference like a new picture (True before any reference)?"""
        if self._ref is None:
            return True
        refs = [self._ref, *(x for _, x in self._snapshots)]
        return all(self._share(r, thumb) >= self.config.cut_share for r in refs)

    def confirms(self, thumb: np.ndarray, pending: int) -> bool:
        """May this frame's embedding confirm a change (SceneTracker.update's ``cut``)? It must be a cut,
        and when a distant frame is pending, hold still against it (figures walking do not)."""
        if not self.is_cut(thumb):
            return False
        c = self._candidate
        return pending == 0 or (c is not None and self._share(c[1], thumb) <= self.config.steady_share)

    def wants(self, t: float, thumb: np.ndarray, pending: int) -> bool:
        """Should the frame seen at ``t`` (its thumbnail) be embedded now? ``pending``: SceneTracker.pending."""
        if self._ref is None or not self.is_cut(thumb):
            return False
        if pending == 0:
            return True
        c = self._candidate
        return c is not None and t - c[0] >= self.config.confirm_gap_s and self.confirms(thumb, pending)

    def embedded(self, t: float, thumb: np.ndarray, update: SceneUpdate, pending: int) -> None:
        """Tell the watch what the tracker made of the frame just embedded (``pending`` after it)."""
        if update.changed or (self._recent and self._recent[-1].shape != thumb.shape):
            self._recent.clear()
            self._snapshots.clear()
        if update.changed or pending == 0:
            self._recent.append(thumb)
            if not self._snapshots or t - self._snapshots[-1][0] >= self.snapshot_s:
                self._snapshots.append((t, thumb))
            self._ref = self._recent[0] if len(self._recent) == 1 else np.median(np.stack(self._recent), axis=0)
            self._candidate = None
        else:
            self._candidate = (t, thumb)


class Crossfade:
    """Conditioning vector over time: holds a current target and glides linearly from the
    value at the moment a new target is set to that target over ``crossfade_s`` seconds.

    Linear, not equal-power: these are model inputs, not audio, and a linear glide
    stays on the segment between the two vectors.
    """

    def __init__(self, crossfade_s: float):
        if not crossfade_s >= 0:
            raise ValueError(f"crossfade_s must be >= 0, not {crossfade_s!r}")
        self.crossfade_s = float(crossfade_s)
        self._start: np.ndarray | None = None     # value when the current target was set
        self._target: np.ndarray | None = None
        self._t0 = 0.0

    def set(self, t: float, target: np.ndarray, immediate: bool = False) -> None:
        """A new target from time ``t``: glide to it from the current value (no jump), or jump if ``immediate``."""
        target = np.array(target, dtype=np.float32)
        if self._target is None or immediate or self.crossfade_s == 0:
            start = target
        else:
            if target.shape != self._target.shape:
                raise ValueError(f"target shape {target.shape} differs from the current {self._target.shape}")
            start = self.value(t)
        self._start, self._target, self._t0 = start, target, t

    def value(self, t: float) -> np.ndarray:
        """The conditioning vector at time ``t`` (a new float32 array)."""
        if self._target is None:
            raise RuntimeError("Crossfade.value() before any set()")
        w = 1.0 if self.crossfade_s == 0 else (t - self._t0) / self.crossfade_s
        if w >= 1.0:
            return self._target.copy()
        if w <= 0.0:
            return self._start.copy()
        return self._start + np.float32(w) * (self._target - self._start)

    @property
    def target(self) -> np.ndarray | None:
        """The target being glided to (a copy), None before the first set()."""
        return None if self._target is None else self._target.copy()
