"""Offline render: images -> MIDI files, as fast as the CPU allows (the paper's original use).

All images are embedded together, each gets its own conductor's direction
(its emotion, key and control targets), and their performances are sampled in
batches through the step decoder, so each step's cost is shared, on one
thread per core. Each image has its own RNG, seeded from ``seed`` and the
image's file stem, so its music (and its key) does not depend on which other
images are rendered with it.
"""
from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from installation.mood import controls as C
from installation.music import events as E
from installation.mood.conductor import Conductor, Direction, Steering
from installation.music.decoder import PRIMER
from installation.mood.emotion_map import EmotionMap
from installation.music.critic import candidates_of
from installation.music.legality import NoteState
from installation.music.sampling import sample
from installation.settings import generation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderSettings:
    seconds: float = 30.0        # music per image
    seed: int = 0
    temperature: float = generation("temperature")     # installation/settings.py
    top_p: float = generation("top_p")
    batch: int = 64              # sequences stepped together, at most
    workers: int = 1             # threads, each stepping its own batch (onnxruntime runs them in parallel)
    max_events: int | None = None  # safety cap per sequence (default: 200 events per second of music)
    legal: bool = True           # mask impossible note events (installation/music/legality.py)
    candidates: int | None = None  # the critic's candidates per phrase (None: the decoder's critic's; 1: no critic)


def row_seed(seed: int, key: str) -> list[int]:
    return [int(seed) & 0xFFFFFFFF, zlib.crc32(key.encode())]


def directions(image_va: np.ndarray, keys: list[str], steering: Steering, emap: EmotionMap,
               templates: np.ndarray | None, seed: int) -> list[Direction]:
    """One conductor's direction per image (its key drawn from the image's own seed)."""
    out = []
    for va, k in zip(image_va, keys):
        c = Conductor(steering, emap, templates, seed=row_seed(seed, k))
        out.append(c.direct(0.0, va, new_scene=True))
    return out


def plan_seed(seed: int, key: str) -> int:
    """A row's harmony-plan seed: from the run's seed and the row's key (file stem) together, so that two images
    never share a chord sequence because they share a key (a product of the two was 0 for seed 0)."""
    return int(np.random.SeedSequence(row_seed(seed, key)).generate_state(1)[0])


def harmony_plans(folder: Path, ds: list[Direction], keys: list[str], seed: int) -> list | None:
    """A harmony plan per direction (mood/harmony.py, from ``folder``/harmony.json) in its key, mode and arousal,
    seeded per row like its music; None where the models have no harmony model."""
    path = Path(folder) / "harmony.json"
    if not path.is_file():
        return None
    from installation.mood.harmony import HarmonyModel, HarmonyPlan

    model = HarmonyModel.load(path)
    out = []
    for d, k in zip(ds, keys):
        key = d.targets.key
        out.append(None if key is None else
                   HarmonyPlan(model, key.tonic, key.minor, float(d.arousal), seed=plan_seed(seed, k)))
    return out


def chord_codes(plans, rows, seconds) -> np.ndarray:
    """The chord control (len(rows), 13) of each row's harmony plan (None: unset) at its music time (s)."""
    out = np.empty((len(rows), 13), np.float32)
    for i, (r, t) in enumerate(zip(rows, seconds)):
        chord = plans[r].chord_at(float(t)) if plans[r] is not None else None
        out[i] = C.chord_code(chord.pcs if chord is not None else None)
    return out


def generate(decoder, controls: np.ndarray, keys: list[str], s: RenderSettings, plans=None) -> list[np.ndarray]:
    """Sample one performance per control vector (N, K) until each reaches ``s.seconds`` of music.

    Returns int16 event arrays; ``keys`` (e.g. file stems) seed each row's RNG. ``plans``: a harmony plan
    per row (mood/harmony.py, or None), whose chord is written into the row's chord control at every step.
    With ``s.workers`` > 1 the rows are shared out in batches of at most
    ``s.batch`` to that many threads: the step is compute-bound, so two threads
    on two cores halve the wall time. A row's music is the same either way.
    """
    n = len(controls)
    size = max(1, min(s.batch, -(-n // max(1, s.workers))))
    spans = [(i, min(i + size, n)) for i in range(0, n, size)]
    plans = [None] * n if plans is None else list(plans)
    if s.workers <= 1 or len(spans) == 1:
        return [q for a, b in spans for q in _generate_batch(decoder, controls[a:b], keys[a:b], s, plans[a:b])]
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=s.workers, thread_name_prefix="render") as pool:
        parts = pool.map(lambda ab: _generate_batch(decoder, controls[ab[0]:ab[1]], keys[ab[0]:ab[1]], s,
                                                    plans[ab[0]:ab[1]]), spans)
        return [q for part in parts for q in part]


def _generate_batch(decoder, controls, keys, s: RenderSettings, plans=None) -> list[np.ndarray]:
    plans = [None] * len(controls) if plans is None else plans
    if candidates_of(decoder, s.candidates) > 1:
        return _generate_phrases(decoder, controls, keys, s, plans)
    n = len(controls)
    cond = np.array(controls, np.float32, copy=True)
    per_step = any(p is not None for p in plans) and cond.shape[1] >= C.CHORD + 13
    rngs = [np.random.default_rng(row_seed(s.seed, k)) for k in keys]
    steps_needed = int(round(s.seconds * E.STEPS_PER_SECOND))
    cap = s.max_events or int(200 * s.seconds) + 64
    events = np.full(n, PRIMER, np.int64)
    state = decoder.initial(cond)
    clock = np.zeros(n, np.int64)                    # music time so far, in 10 ms steps
    buf = np.zeros((cap, n), np.int16)               # buf[t, row]: the row's t-th event
    length = np.full(n, cap)
    active = np.arange(n)
    notes = NoteState(n)
    for t in range(cap):
        if per_step:
            cond[:, C.CHORD:C.CHORD + 13] = chord_codes(plans, active, clock[active] / E.STEPS_PER_SECOND)
        logits, state = decoder.step(events, state, cond)
        if s.legal:
            logits = notes.mask(logits, cond[:, C.CHORD:C.CHORD + 13] if per_step else None)   # the pedal lifts at a chord change
        u = np.array([rngs[r].random() for r in active])
        events = sample(logits, None, s.temperature, s.top_p, u=u)
        notes.update(events)
        buf[t, active] = events
        shift = (events >= E.TIME_SHIFT) & (events < E.TIME_SHIFT + E.NUM_TIME_SHIFTS)
        clock[active] += np.where(shift, events - E.TIME_SHIFT + 1, 0)
        done = clock[active] >= steps_needed
        if done.any():                              # drop finished rows from the batch
            length[active[done]] = t + 1
            keep = ~done
            active, events, cond = active[keep], events[keep], cond[keep]
            state = decoder.take(state, keep)
            notes = notes.take(keep)
            if len(active) == 0:
                break
    return [buf[:length[r], r].copy() for r in range(n)]


def output_paths(images: list[Path], out_dir: Path) -> list[Path]:
    """DIR/<stem>.mid, made unique (stem-2, stem-3, ...) when stems clash."""
    used: set[str] = set()
    paths = []
    for img in images:
        name, k = f"{img.stem}.mid", 1
        while name.lower() in used:
            k += 1
            name = f"{img.stem}-{k}.mid"
        used.add(name.lower())
        paths.append(out_dir / name)
    return paths


def _generate_phrases(decoder, controls, keys, s: RenderSettings, plans=None) -> list[np.ndarray]:
    """As _generate_batch, a phrase at a time: each row's phrase is the critic's pick of K candidates."""
    from installation.music.critic import NoteClock
    from installation.music.phrases import Voices, sample_phrase

    critic, k = decoder.critic, candidates_of(decoder, s.candidates)
    n = len(controls)
    cond = np.ascontiguousarray(controls, np.float32)
    rngs = [np.random.default_rng(row_seed(s.seed, key)) for key in keys]
    steps_needed = int(round(s.seconds * E.STEPS_PER_SECOND))
    cap = s.max_events or int(200 * s.seconds) + 64
    v = Voices(decoder.initial(cond), np.full(n, PRIMER, np.int64), NoteState(n), NoteClock(n))
    out: list[list[int]] = [[] for _ in range(n)]
    clock = np.zeros(n, np.int64)
    active = np.arange(n)
    while len(active):
        draw = lambda act=active: np.concatenate([rngs[r].random(k) for r in act])     # noqa: E731
        chords = None
        if plans is not None and any(p is not None for p in plans):
            rows = np.repeat(active, k)
            chords = lambda t, rows=rows: chord_codes(plans, rows, t)     # noqa: E731
        phr, v = sample_phrase(decoder, critic, v, cond[active], draw, candidates=k, events=critic.phrase_events,
                               temperature=s.temperature, top_p=s.top_p, legal=s.legal, chords=chords,
                               t0=clock[active] / E.STEPS_PER_SECOND)
        keep = np.ones(len(active), bool)
        for i, r in enumerate(active):
            for e in phr[i].tolist():
                out[r].append(e)
                if E.TIME_SHIFT <= e < E.TIME_SHIFT + E.NUM_TIME_SHIFTS:
                    clock[r] += e - E.TIME_SHIFT + 1
                if clock[r] >= steps_needed or len(out[r]) >= cap:
                    keep[i] = False
                    break
        if not keep.all():
            active = active[keep]
            v = v.take(decoder, np.flatnonzero(keep))
    return [np.asarray(o, np.int16) for o in out]
