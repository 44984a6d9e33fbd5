"""The Transformer decoder at run time: one ONNX step against a ring buffer of cached keys and values.

    transformer_step.onnx:
        event (N,), keys_l, values_l (N, H, W, dh) for each block l, slot_pos (N, W), pos (N,), controls (N, K)
        -> logits (N, 388: the shipped model predates the pedal; padded to 390 with -inf), new_keys, new_values

The state (``TransformerState``) is a ring of W slots per row: each slot holds
one past event's keys and values in every block, its integer position and the
event itself. A step attends to the occupied slots (and to the conditioning
prefix, which the step recomputes from the current controls), then this module
writes the new event's keys and values into slot ``pos % W``, overwriting the
event W steps back. The cost per event is constant, whether the performance is
a minute or a day old, and nothing about earlier events is recomputed. Positions
are int64 and only their differences (at most W) reach the model.

The state is *consumed*: ``step`` and ``blend`` update its buffers in place and
return it, so keep only the returned state (the Performer and the render do).
``initial`` returns an empty ring that takes no memory until its first step, so
a timeline may hold one per scene.

Re-priming (``blend``): the GRU moves its hidden state part of the way back to
the scene's initial state. The Transformer's equivalent is forgetting: a blend
with ``mix`` keeps only the most recent ``(1 - mix)`` share of the events in the
window (at least ``MIN_KEEP``), by marking the older slots empty, which costs
nothing; ``mix >= 1`` restarts from the target state. The live conditioning
(prefix and per-event controls) then weighs more against a shorter past. With
the generator's defaults a scene change (mix 0.5) keeps the last half of the
window and a phrase re-prime (mix 0.6) the last 40%.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from installation.errors import UserError
from installation.manifest import Manifest, file_sha256
from installation.mood.controls import own_controls
from installation.onnx_session import open_session
from installation.vocabulary import full_vocabulary

STEP = "transformer_step"      # the manifest entry
MIN_KEEP = 16                  # a partial re-prime keeps at least this many recent events


@dataclass
class TransformerState:
    """A batch of ring buffers. ``keys``/``values`` are None until the first step (an empty ring)."""
    keys: np.ndarray | None        # (L, N, H, W, dh) float32
    values: np.ndarray | None
    slot_pos: np.ndarray           # (N, W) int64: the position of the event in each slot, -1: empty
    slot_event: np.ndarray         # (N, W) int64: the event in each slot (for inspection and primers)
    pos: np.ndarray                # (N,) int64: the position of the next event

    @property
    def batch(self) -> int:
        return len(self.pos)

    def copy(self) -> "TransformerState":
        c = lambda a: None if a is None else a.copy()
        return TransformerState(c(self.keys), c(self.values), self.slot_pos.copy(), self.slot_event.copy(),
                                self.pos.copy())

    def rows(self, rows) -> "TransformerState":
        """Some batch rows (a copy)."""
        kv = lambda a: None if a is None else np.ascontiguousarray(a[:, rows])
        return TransformerState(kv(self.keys), kv(self.values), self.slot_pos[rows].copy(),
                                self.slot_event[rows].copy(), self.pos[rows].copy())

    def recent(self) -> np.ndarray:
        """Row 0's events in the window, oldest first (for tests and primers)."""
        order = np.argsort(self.slot_pos[0])
        return self.slot_event[0][order][self.slot_pos[0][order] >= 0]


def empty_state(n: int, window: int) -> TransformerState:
    return TransformerState(None, None, np.full((n, window), -1, np.int64), np.full((n, window), -1, np.int64),
                            np.zeros(n, np.int64))


def write(state: TransformerState, new_keys: np.ndarray, new_values: np.ndarray, events: np.ndarray) -> None:
    """Store one step's keys/values (L, N, H, dh) and events (N,) in slot pos % W, then advance pos."""
    n = state.batch
    W = state.slot_pos.shape[1]
    rows = np.arange(n)
    slot = state.pos % W
    # advanced indices on axes 1 and 3 (split by a slice) put the row axis first: (N, L, H, dh)
    state.keys[:, rows, :, slot, :] = new_keys.transpose(1, 0, 2, 3)
    state.values[:, rows, :, slot, :] = new_values.transpose(1, 0, 2, 3)
    state.slot_pos[rows, slot] = state.pos
    state.slot_event[rows, slot] = events
    state.pos += 1


def trim(state: TransformerState, keep) -> TransformerState:
    """Forget all but the ``keep`` (int, or (N,) per row) most recent events of each row (in place)."""
    state.slot_pos[state.slot_pos < (state.pos - keep)[:, None]] = -1
    return state


class TransformerDecoder:
    """The decoder interface (``initial``, ``step``, ``blend``, ``take``, ``row``) over transformer_step.onnx."""

    kind = "transformer"

    def __init__(self, step_path: Path, config: dict, *, threads: int = 1, providers: list[str] | None = None):
        self.stepper, self.provider = open_session(step_path, threads=threads, providers=providers,
                                                   what="transformer step decoder")
        self.config = dict(config)
        self.layers, self.heads = config["layers"], config["heads"]
        self.window, self.control_dim = config["window"], config["control_dim"]
        self.head_dim = config["d_model"] // config["heads"]

    def initial(self, controls: np.ndarray) -> TransformerState:
        """(N, K) controls -> an empty ring per row. The controls act at every step, not here."""
        c = np.asarray(controls)
        n = 1 if c.ndim == 1 else c.shape[0]
        return empty_state(n, self.window)

    def step(self, events: np.ndarray, state: TransformerState, controls: np.ndarray):
        """events (N,) int64, state, controls (N, K) -> logits (N, V), the state advanced by one event."""
        if state.keys is None:
            shape = (self.layers, state.batch, self.heads, self.window, self.head_dim)
            state.keys, state.values = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
        events = np.ascontiguousarray(events, np.int64).reshape(-1)
        feed = {"event": events, "slot_pos": state.slot_pos, "pos": state.pos,
                "controls": own_controls(controls, self.control_dim)}
        for layer in range(self.layers):              # views of the (L, ...) arrays: no copy
            feed[f"keys_{layer}"] = state.keys[layer]
            feed[f"values_{layer}"] = state.values[layer]
        logits, nk, nv = self.stepper.run(None, feed)
        write(state, nk, nv, events)
        return full_vocabulary(logits), state

    @staticmethod
    def blend(state: TransformerState, target: TransformerState, mix: float) -> TransformerState:
        """A re-prime or scene change: restart from ``target`` (mix >= 1, a copy), else forget the older
        ``mix`` share of the window (see the module docstring)."""
        if mix >= 1.0 or state is None:
            return target.copy()
        held = (state.slot_pos >= 0).sum(1)                                   # (N,) events in each window
        return trim(state, np.maximum(MIN_KEEP, np.round((1.0 - mix) * held).astype(np.int64)))

    @staticmethod
    def batch_of(state: TransformerState) -> int:
        return state.batch

    @staticmethod
    def take(state: TransformerState, rows: np.ndarray) -> TransformerState:
        """The state of some batch rows (render drops finished rows)."""
        return state.rows(rows)

    @staticmethod
    def row(state: TransformerState, i: int) -> TransformerState:
        """Row i of a batched state, as a batch of one."""
        return state.rows(slice(i, i + 1))


def open_transformer(manifest: Manifest, threads: int = 1, providers: list[str] | None = None) -> TransformerDecoder:
    """The manifest's Transformer decoder (its ``transformer_step`` entry), checked like the other models."""
    entry = manifest.data.get("models", {}).get(STEP)
    where = manifest.folder / "manifest.json"
    if entry is None:
        raise UserError(f"{where}: no {STEP} entry: these models have no Transformer decoder; "
                        "use --decoder gru, or export one with `python -m installation.training export --decoder transformer`")
    path = manifest.folder / entry["file"]
    if not path.is_file():
        raise UserError(f"model file missing: {path} (listed in {where.name}); restore it with git or re-export")
    if entry.get("sha256") and file_sha256(path) != entry["sha256"]:
        raise UserError(f"{path}: sha256 does not match {where.name}; the file was altered or truncated "
                        "(git checkout it again, or re-export the models)")
    return TransformerDecoder(path, entry["config"], threads=threads, providers=providers)
