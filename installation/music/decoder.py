"""Where a number becomes events: the ONNX step decoder, steered by controls, and a performer that samples.

    controls (N, K) --decoder_init--> state       the decoder's initial state for what is asked
    event, state, controls --decoder_step--> logits (388), state'

``controls`` is the vector of installation/mood/controls.py (key, density, loudness,
register, emotion, each possibly unset). The state is the decoder's own business:
for the GRU it is the hidden state (L, N, H). Every decoder offers the same five
operations (``initial``, ``step``, ``blend``, ``take``, ``kind``), so the
generator and the offline render work with any of them.

A ``Performer`` is one running voice: it holds the state and the last event and
samples one event at a time (temperature, top-p, its own seeded RNG).
"""
from __future__ import annotations

import numpy as np

from installation.music import events as E
from installation.manifest import Manifest
from installation.onnx_session import open_session
from installation.music.legality import NoteState
from installation.music.sampling import sample

PRIMER = E.TIME_SHIFT          # the first input event: a 10 ms pause, neutral in loudness and pitch


class GruDecoder:
    """The GRU's two ONNX graphs: controls -> h0, and one event step."""

    kind = "gru"

    def __init__(self, manifest: Manifest, *, threads: int = 1, providers: list[str] | None = None):
        self.init_session, _ = open_session(manifest.path("decoder_init"), threads=threads, providers=providers,
                                            what="decoder init")
        self.stepper, self.provider = open_session(manifest.path("decoder_step"), threads=threads,
                                                   providers=providers, what="step decoder")
        cfg = manifest.model_config
        self.layers, self.hidden, self.control_dim = cfg["layers"], cfg["hidden"], cfg["control_dim"]

    def initial(self, controls: np.ndarray) -> np.ndarray:
        """(N, K) controls -> hidden (L, N, H)."""
        return self.init_session.run(None, {"controls": np.asarray(controls, np.float32).reshape(-1, self.control_dim)})[0]

    def step(self, events: np.ndarray, state: np.ndarray, controls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """events (N,) int64, hidden (L, N, H), controls (N, K) -> logits (N, V), hidden (L, N, H)."""
        logits, hidden = self.stepper.run(None, {"event": events, "hidden": state, "controls": controls})
        return logits, hidden

    @staticmethod
    def blend(state: np.ndarray, target: np.ndarray, mix: float) -> np.ndarray:
        """Move a state part of the way (mix 0..1) to another (a re-prime or a scene change)."""
        if mix >= 1.0:
            return np.array(target, np.float32, copy=True)
        return ((1.0 - mix) * state + mix * target).astype(np.float32)

    @staticmethod
    def take(state: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The state of some batch rows (render drops finished rows)."""
        return np.ascontiguousarray(state[:, rows])

    @staticmethod
    def batch_of(state: np.ndarray) -> int:
        return int(state.shape[1])

    @staticmethod
    def row(state: np.ndarray, i: int) -> np.ndarray:
        """Row i of a batched state, as a batch of one."""
        return np.ascontiguousarray(state[:, i:i + 1])


MusicDecoder = GruDecoder        # the default decoder


def open_decoder(manifest: Manifest, *, kind: str | None = None, threads: int = 1, providers: list[str] | None = None,
                 guidance: float | None = None):
    """The decoder of that kind ("gru", "transformer"; None: the manifest's default), with control guidance at the
    weight the manifest gives for it (``guidance`` overrides; 0 turns it off; installation/music/guidance.py)."""
    kind = kind or manifest.default_decoder
    if kind not in manifest.decoders:
        from installation.errors import UserError
        raise UserError(f"--decoder {kind}: the models in {manifest.folder} have {', '.join(manifest.decoders)}; "
                        "choose one of those")
    if kind == "transformer":
        from installation.music.transformer_decoder import open_transformer
        dec = open_transformer(manifest, threads=threads, providers=providers)
    else:
        dec = GruDecoder(manifest, threads=threads, providers=providers)
    g = manifest.data.get("decoders", {}).get(kind, {}).get("guidance", {})
    weight = g.get("weight", 0.0) if guidance is None else guidance
    if weight > 0:
        from installation.music.guidance import GuidedDecoder
        dec = GuidedDecoder(dec, weight, tuple(g.get("groups", ("key",))))
    return dec


class Performer:
    """One voice sampled event by event from a step decoder."""

    def __init__(self, decoder, *, seed: int | None = None, temperature: float = 1.0, top_p: float = 0.95,
                 legal: bool = True):
        self.decoder = decoder
        self.rng = np.random.default_rng(seed)
        self.temperature, self.top_p = temperature, top_p
        self.notes = NoteState(1) if legal else None     # masks impossible note events (music/legality.py)
        self.state = None
        self.last = np.array([PRIMER], np.int64)

    def prime(self, initial_state, mix: float = 1.0) -> None:
        """Set the state to a scene's initial state (mix=1), or move it part of the way (a phrase re-prime)."""
        if self.state is None or mix >= 1.0:
            self.state = self.decoder.blend(initial_state, initial_state, 1.0)
        else:
            self.state = self.decoder.blend(self.state, initial_state, mix)

    def next(self, controls: np.ndarray) -> int:
        """Sample the next event under the control vector ``controls`` (K,)."""
        logits, self.state = self.decoder.step(self.last, self.state, np.asarray(controls, np.float32).reshape(1, -1))
        if self.notes is not None:
            logits = self.notes.mask(logits)
        self.last = sample(logits, self.rng, self.temperature, self.top_p)
        if self.notes is not None:
            self.notes.update(self.last)
        return int(self.last[0])
