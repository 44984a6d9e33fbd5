"""Where emotion becomes instructions: the conductor tells the decoder what to play.

    image valence/arousal --(hand overrides, motion)--> emotion --emotion map--> control targets --> control vector

- Hand overrides (``--valence``, ``--arousal``) replace what the image says, each on its own.
- A hand on a controller (a patch's MIDI CC or OSC input, ``hand``) is blended with the picture
  by the patch's weight, per axis it has touched.
- Motion (live cameras only) adds ``motion_weight * motion`` to arousal: visitors moving make
  the music livelier, a still room plays calmer.
- The emotion is smoothed over time (restarting at a scene change), so the controls glide.
- The key follows the emotion map's rule through a seeded ``KeyPlanner`` (kept while the mode stays,
  parallel or relative on a change of mode); ``--key`` pins it.

Plain numpy and dataclasses; the vision thread and the offline render both use it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from installation.mood import controls as C
from installation.mood.emotion_map import EmotionMap, KeyPlanner, Pin, plan


@dataclass(frozen=True)
class Steering:
    """What the user sets by hand (None: follow the image)."""
    valence: float | None = None        # -1..1
    arousal: float | None = None        # -1..1
    key: str | None = None              # e.g. "D", "F# minor"
    motion_weight: float = 0.0          # arousal added at full motion (live cameras)
    smoothing_s: float = 1.5            # time constant of the emotion's smoothing

    def pin(self) -> Pin:
        if self.key is None:
            return Pin()
        tonic, minor = C.parse_key(self.key)
        return Pin(tonic, minor)

    def check(self) -> None:
        """Raises ValueError naming the option when a setting is out of range."""
        for name, v in (("--valence", self.valence), ("--arousal", self.arousal)):
            if v is not None and not -1.0 <= v <= 1.0:
                raise ValueError(f"{name} {v}: must be between -1 and 1")
        if not 0.0 <= self.motion_weight <= 2.0:
            raise ValueError(f"--motion-weight {self.motion_weight}: must be between 0 and 2")
        self.pin()


@dataclass(frozen=True)
class Direction:
    """One instruction to the decoder: the emotion it follows, the targets and their control vector."""
    valence: float
    arousal: float
    motion: float | None                 # None: no motion meter (still images, folders, or weight 0)
    hand: bool                           # a controller's setting was blended in
    targets: C.Targets
    controls: np.ndarray                 # (CONTROL_DIM,) float32

    def describe(self) -> str:
        """e.g. 'valence +0.41, arousal -0.22, motion 0.10 -> C major, 6.1 notes/s, velocity 62, pitch 62'."""
        m = ", motion off" if self.motion is None else f", motion {self.motion:.2f}"
        return f"valence {self.valence:+.2f}, arousal {self.arousal:+.2f}{m} -> {self.targets.describe()}"


class Conductor:
    """Turns the image's emotion into control vectors, scene by scene; holds the key and the smoothing."""

    def __init__(self, steering: Steering, emap: EmotionMap, templates: np.ndarray | None = None,
                 seed: int | None = None):
        steering.check()
        self.s, self.emap = steering, emap
        self.templates = templates
        self.keys = KeyPlanner(emap, pin=steering.pin(), seed=seed)
        self.rng = np.random.default_rng(None if seed is None else [1, *np.atleast_1d(seed).tolist()])
        self._deviation = (0.0, 0.0, 0.0)       # this scene's draw around the map (emotion_map.variety)
        self._va: np.ndarray | None = None
        self._t = 0.0
        self.hand = None          # an object with current() -> (valence | None, arousal | None, weight) | None

    def direct(self, t: float, image_va, *, motion: float | None = None, new_scene: bool = False) -> Direction:
        """The direction at time t (s) for the image's valence/arousal; a new scene restarts the smoothing."""
        img = np.clip(np.asarray(image_va, np.float64).reshape(2), -1.0, 1.0)
        if self._va is None or new_scene:
            self._deviation = tuple(float(z) for z in np.clip(self.rng.standard_normal(3), -2.0, 2.0))
        if self._va is None or new_scene or self.s.smoothing_s <= 0:
            va = img
        else:
            alpha = 1.0 - math.exp(-max(0.0, t - self._t) / self.s.smoothing_s)
            va = self._va + alpha * (img - self._va)
        self._va, self._t = va, t
        v, a = float(va[0]), float(va[1])
        cur = self.hand.current() if self.hand is not None else None
        if cur is not None:
            hv, ha, w = cur
            v = v if hv is None else (1 - w) * v + w * hv
            a = a if ha is None else (1 - w) * a + w * ha
        v = self.s.valence if self.s.valence is not None else v
        a = self.s.arousal if self.s.arousal is not None else a
        if self.s.arousal is None and motion is not None:
            a = float(np.clip(a + self.s.motion_weight * motion, -1.0, 1.0))
        targets = plan(self.emap, self.keys, v, a, self._deviation)
        return Direction(v, a, None if motion is None else float(motion), cur is not None, targets,
                         C.encode(targets, self.templates))
