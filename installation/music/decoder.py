"""Where a number becomes events: the ONNX step decoder, steered by controls, and a performer that samples.

    controls (N, K) --decoder_init--> state       the decoder's initial state for what is asked
    event, state, controls --decoder_step--> logits (390), state'

``controls`` is the vector of installation/mood/controls.py (key, density, loudness,
register, emotion, each possibly unset, and the chord in force, written per step).
A decoder exported with fewer controls (the Transformer as shipped: the 24 window
controls) is given its own first ones; one exported with a smaller vocabulary (388
events, before the pedal) has its logits padded with -inf, so it never plays the pedal. The state is the decoder's own business:
for the GRU it is the hidden state (L, N, H). Every decoder offers the same five
operations (``initial``, ``step``, ``blend``, ``take``, ``kind``), so the
generator and the offline render work with any of them.

A ``Performer`` is one running voice: it holds the state and the last event and
samples one event at a time (temperature, top-p, its own seeded RNG).
"""
from __future__ import annotations

import numpy as np

from installation.errors import UserError
from installation.manifest import Manifest
from installation.mood.controls import own_controls
from installation.onnx_session import open_session
from installation.music.critic import NoteClock, candidates_of, phrase_features
from installation.music.critic import load as load_critic
from installation.music.guidance import GuidedDecoder
from installation.music.legality import NoteState
from installation.music.phrases import Voices, sample_phrase
from installation.music.sampling import sample
from installation.music.transformer_decoder import open_transformer
from installation.settings import GENERATION
from installation.vocabulary import TIME_SHIFT, full_vocabulary

PRIMER = TIME_SHIFT            # the first input event: a 10 ms pause, neutral in loudness and pitch


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
        return self.init_session.run(None, {"controls": own_controls(controls, self.control_dim)})[0]

    def step(self, events: np.ndarray, state: np.ndarray, controls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """events (N,) int64, hidden (L, N, H), controls (N, K) -> logits (N, V), hidden (L, N, H)."""
        logits, hidden = self.stepper.run(None, {"event": events, "hidden": state,
                                                 "controls": own_controls(controls, self.control_dim)})
        return full_vocabulary(logits), hidden

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


def open_decoder(manifest: Manifest, *, kind: str | None = None, threads: int = 1, providers: list[str] | None = None,
                 guidance: float | None = None):
    """The decoder of that kind ("gru", "transformer"; None: the manifest's default), with control guidance at the
    weight and on the groups the manifest gives for it (``guidance`` overrides the weight; 0 turns it off;
    installation/music/guidance.py)."""
    kind = kind or manifest.default_decoder
    if kind not in manifest.decoders:
        raise UserError(f"--decoder {kind}: the models in {manifest.folder} have {', '.join(manifest.decoders)}; "
                        "choose one of those")
    if kind == "transformer":
        dec = open_transformer(manifest, threads=threads, providers=providers)
    else:
        dec = GruDecoder(manifest, threads=threads, providers=providers)
    g = manifest.data.get("decoders", {}).get(kind, {}).get("guidance", {})
    weight = g.get("weight", 0.0) if guidance is None else guidance
    if weight > 0:
        groups = tuple(g.get("groups", ("key",)))
        dec = GuidedDecoder(dec, weight, groups)
    dec.critic = _critic(manifest, kind)
    return dec


def _critic(manifest: Manifest, kind: str):
    """The decoder's critic (critic.json, named by its manifest entry), or None."""
    entry = manifest.data.get("decoders", {}).get(kind, {}).get("critic")
    if not entry:
        return None
    path = manifest.folder / entry["file"]
    try:
        return load_critic(path)
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"{path}: the {kind} decoder's critic cannot be read ({exc}); restore it with git or refit it "
                        "with `python -m installation.training.critic_fit`") from None


class Performer:
    """One voice sampled event by event from a step decoder."""

    def __init__(self, decoder, *, seed: int | None = None, temperature: float = GENERATION["temperature"]["default"],
                 top_p: float = GENERATION["top_p"]["default"], legal: bool = True, candidates: int | None = None):
        self.decoder = decoder
        self.rng = np.random.default_rng(seed)
        self.temperature, self.top_p = temperature, top_p
        self.legal = legal
        self.notes = NoteState(1)                        # masks impossible note events (music/legality.py)
        self.candidates = candidates_of(decoder, candidates)      # the critic's candidates per phrase (1: none)
        self.clock = None
        self.phrase: list[int] = []                      # the chosen phrase, still to play
        self.solo = 0                                    # events to sample one by one after a prime
        self.state = None
        self.last = np.array([PRIMER], np.int64)

    def prime(self, initial_state, mix: float = 1.0) -> None:
        """Set the state to a scene's initial state (mix=1), or move it part of the way (a phrase re-prime)."""
        if self.state is None or mix >= 1.0:
            self.state = self.decoder.blend(initial_state, initial_state, 1.0)
        else:
            self.state = self.decoder.blend(self.state, initial_state, mix)
        if self.candidates > 1:
            # what was chosen but not played is dropped, and the first phrase of a scene is sampled event by event,
            # so a scene change is as quick with the critic as without
            if self.phrase:
                self._rewind()
            self.phrase = []
            self.solo = self.decoder.critic.phrase_events
            if self.clock is not None:
                self.clock.pc[:] = 0                     # the solo phrase counts afresh

    def next(self, controls: np.ndarray, chord_at=None, now: float = 0.0) -> int:
        """Sample the next event under the control vector ``controls`` (K,). With the critic, a phrase is chosen
        ahead: ``chord_at(t)`` (music time -> the chord control (13,)) then writes the chord in force at each of
        its steps, the phrase starting at music time ``now``."""
        if self.candidates > 1 and self.solo <= 0:
            if not self.phrase:
                self._choose_phrase(controls, chord_at, now)
            ev = self.phrase.pop(0)
            self._played.append(ev)
            return ev
        logits, self.state = self.decoder.step(self.last, self.state, np.asarray(controls, np.float32).reshape(1, -1))
        if self.legal:       # with a harmony plan (chord_at), the pedal lifts where its chord changes
            logits = self.notes.mask(logits, None if chord_at is None else np.reshape(chord_at(now), (1, -1)))
        self.last = sample(logits, self.rng, self.temperature, self.top_p)
        self.notes.update(self.last)
        if self.candidates > 1:
            self.solo -= 1
            self._follow(int(self.last[0]))
        return int(self.last[0])

    def _rewind(self) -> None:
        """Make the sounding notes (and the last event) those of what was played, not of the whole chosen phrase
        (the decoder's state keeps the phrase: a prime moves it toward the new state anyway)."""
        notes, last = self._before
        for ev in self._played:
            notes.update(np.array([ev]))
        self.notes = notes
        self.last = np.array([self._played[-1]], np.int64) if self._played else last
        self.clock = NoteClock(1)
        self.clock.sounding[0] = notes.sounding[0]

    def _follow(self, ev: int) -> None:
        """Keep the critic's note clock in step with an event played without it."""
        if self.clock is None:
            self.clock = NoteClock(1)
        _, extra = phrase_features(np.array([ev]), self.clock.sounding[0], self.clock.held[0],
                                   pedal0=bool(self.clock.pedal[0]))
        self.clock.sounding[0], self.clock.held[0], self.clock.pedal[0] = extra["sounding"], extra["held"], extra["pedal"]
        self.clock.pc[0] += extra["pc"]

    def _choose_phrase(self, controls: np.ndarray, chord_at=None, now: float = 0.0) -> None:
        k, critic = self.candidates, self.decoder.critic
        self._before = (self.notes.take([0]), np.array(self.last, copy=True))   # to rewind to what was played
        self._played: list[int] = []
        v = Voices(self.state, np.asarray(self.last, np.int64).reshape(1), self.notes, self.clock or NoteClock(1))
        phr, v = sample_phrase(self.decoder, critic, v, np.asarray(controls, np.float32).reshape(1, -1),
                               lambda: self.rng.random(k), candidates=k, events=critic.phrase_events,
                               temperature=self.temperature, top_p=self.top_p, legal=self.legal,
                               chords=None if chord_at is None else (lambda t: [chord_at(x) for x in t]), t0=now)
        self.state, self.last, self.notes, self.clock = v.state, v.last, v.notes, v.clock
        self.phrase = phr[0].tolist()
