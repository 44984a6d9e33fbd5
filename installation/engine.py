"""The live engine (the thinker): its threads wired together, started and stopped in order.

    capture (inside the source) -> vision (encoder, image emotion, conductor) -> SceneTimeline
        -> generator (step decoder under the controls) -> the sender process (its Scheduler, the MIDI port)

The main thread owns start/stop order, signals and the final panic. Every
thread watches one stop Event and is joined with a timeout. A failing thread
stops the whole engine; the sender still closes every note.
"""
from __future__ import annotations

import dataclasses
import logging
import sys
import threading
import time
from dataclasses import dataclass, field

from installation.errors import UserError
from installation.image.emotion import ImageEmotion
from installation.image.encoder import ImageEncoder
from installation.image.motion import MotionMeter
from installation.image.scene import SceneConfig
from installation.image.vision import SceneTimeline, VisionThread
from installation.manifest import DEFAULT_DIR, Manifest
from installation.mood import emotion_map
from installation.mood.conductor import Conductor, Steering
from installation.mood.harmony import HarmonyModel, HarmonyPlan
from installation.music.decoder import Performer, open_decoder
from installation.music.generator import GeneratorConfig, GeneratorThread
from installation.patches import load_patch
from installation.patches.live import PatchRuntime
from installation.settings import generation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineConfig:
    embed_fps: float = 4.0          # frames embedded per second at most
    seed: int | None = generation("seed")                  # the generation options: installation/settings.py
    temperature: float = generation("temperature")
    top_p: float = generation("top_p")
    encoder_threads: int = 1        # onnxruntime threads for the image encoder
    start_delay_s: float = 0.25     # first note is due this long after start (room to generate ahead)
    gil_switch_s: float = 0.0002    # sys.setswitchinterval while running (Python's default: 5 ms)
    steering: Steering = field(default_factory=Steering)     # hand overrides: valence, arousal, key, motion weight
    emotion_map: emotion_map.EmotionMap | None = None        # None: the models' fitted map (emotion_map.toml)
    decoder: str | None = generation("decoder")            # None: the manifest's default
    guidance: float | None = generation("guidance")        # None: the manifest's
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    scene: SceneConfig = field(default_factory=SceneConfig)


def open_harmony(folder, seed=None):
    """The harmony plan for the models in ``folder`` (their harmony.json), or None where they have none."""
    path = folder / "harmony.json"
    if not path.is_file():
        return None
    try:
        return HarmonyPlan(HarmonyModel.load(path), seed=seed)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise UserError(f"{path}: not a harmony model this runtime reads ({type(exc).__name__}: {exc}); "
                        f"refit it: python -m installation.training.harmony_fit") from None


class Engine:
    """Owns the models, the threads and the stop Event. Constructing it loads models; nothing runs until start().

    ``patch`` (installation.patches.Patch): the generator's notes go through its router, and
    ``self.patch`` (a PatchRuntime) runs its CCs, OSC, clock and inputs next to the threads.
    ``scheduler``: where the generator's (due, message) pairs go: the sender process's proxy (midi.link's
    RemoteScheduler: push/discard_after/start/stop/stats), which owns the port; None: no music leaves (the
    vision thread alone, for tests)."""

    def __init__(self, manifest: Manifest, source, cfg: EngineConfig, *, scheduler, clock=time.perf_counter,
                 patch=None, midi_api: str | None = None):
        self.cfg, self.source, self.clock = cfg, source, clock
        self.stop_event = threading.Event()
        self.failure: BaseException | None = None
        self.encoder = ImageEncoder(manifest, threads=cfg.encoder_threads)
        self.emotion = ImageEmotion(manifest, threads=1)
        self.decoder = open_decoder(manifest, kind=cfg.decoder, threads=1, guidance=cfg.guidance)
        self.conductor = Conductor(cfg.steering, cfg.emotion_map or emotion_map.for_models(manifest.folder), manifest.key_templates,
                                   seed=cfg.seed)
        motion = None
        if source.live and cfg.steering.motion_weight > 0:
            motion = MotionMeter()
        self.timeline = SceneTimeline(live=source.live)
        self.scheduler = scheduler
        performer = Performer(self.decoder, seed=cfg.seed, temperature=cfg.temperature, top_p=cfg.top_p)
        self.patch = None                 # a patch's controls (installation.patches.live.PatchRuntime)
        if patch is not None:
            self.patch = PatchRuntime(patch, self.scheduler, self.timeline, api=midi_api, clock=clock)
        self.generator = GeneratorThread(performer, self.scheduler, self.timeline, cfg.generator,
                                         stop=self.stop_event, clock=clock, on_error=self._fail,
                                         shaper=self.patch.shaper if self.patch else None)
        self.generator.plan = open_harmony(manifest.folder, cfg.seed)
        if self.patch is not None:
            self.patch.attach(self.generator)
            if self.patch.input is not None:
                self.conductor.hand = self.patch.input      # knobs steer the music too, not only the CCs
            try:
                self.patch.open_inputs()      # a missing input port is a UserError now, before anything plays
            except BaseException:
                self.patch.stop()
                raise
        self.vision = VisionThread(source, self.encoder, self.emotion, self.conductor, self.decoder, self.timeline,
                                   embed_fps=cfg.embed_fps, scene=cfg.scene, stop=self.stop_event,
                                   music_time=self.generator.music_time, motion=motion, clock=clock,
                                   on_error=self._fail)
        self.t0: float | None = None
        self._stopped = False
        self._switch_before: float | None = None

    def _fail(self, exc: BaseException) -> None:
        self.failure = exc
        self.stop_event.set()

    def start(self) -> None:
        # Each thread's turn at the GIL is kept short (Python's default is 5 ms), so the capture, the patch's
        # inputs and the generator's pushes are not held up behind sampling; the sender, which times the notes,
        # sets its own.
        self._switch_before = sys.getswitchinterval()
        sys.setswitchinterval(self.cfg.gil_switch_s)
        self.source.start()
        self.t0 = self.clock() + self.cfg.start_delay_s
        self.scheduler.start()
        if self.patch is not None:
            self.patch.start(self.t0)
        self.vision.start(self.t0)
        self.generator.start(self.t0)

    def wait(self, duration: float | None = None) -> None:
        """Block the main thread until duration passes, stop() is asked for, or a thread fails."""
        deadline = None if duration is None else self.t0 + duration
        while not self.stop_event.is_set():
            left = None if deadline is None else deadline - self.clock()
            if left is not None and left <= 0:
                break
            self.stop_event.wait(0.5 if left is None else min(left, 0.5))
        if self.scheduler.error is not None and self.failure is None:
            self.failure = self.scheduler.error

    def stop(self) -> None:
        """Stop generating, then silence: a note-off for every open note, CC123 and CC120. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self.stop_event.set()
        if self.patch is not None:
            self.patch.stop()
        try:
            if self.patch is not None:              # the sender owns the port: a clock Stop goes to it first
                self.patch.close(self.scheduler, scheduler_alive=False)
            self.scheduler.stop(timeout=0.5)        # then the sender's panic: every note-off, CC123, CC120
        finally:
            self.generator.join(1.0)
            self.vision.join(2.0)
            self.source.close()
            if self._switch_before is not None:
                sys.setswitchinterval(self._switch_before)

    def stats(self) -> dict:
        s = self.scheduler.stats()
        s.update(events_generated=self.generator.events_generated,
                 embeds=self.vision.embeds,
                 scene_changes=list(self.generator.scene_changes))
        return s


# --- the assembly: what `play` and the kiosk's thinker both make of their settings --------------------------

@dataclass(frozen=True)
class Assembly:
    """The patch, where the notes go, and the engine's configuration, made once from the settings."""
    patch: object                   # installation.patches.Patch
    port: str | None                # the MIDI port to connect to, else the virtual port to create
    virtual_port: str | None
    config: EngineConfig


def assemble(s, start_delay_s: float = EngineConfig.start_delay_s) -> Assembly:
    """``s``: play's parsed arguments or a KioskConfig (the same names). The patch (the default one moved to
    ``s.channel``), its ``[output]`` port unless a port was given, its emotion map laid over ``s.emotion_map``,
    the steering: a mistake in any of them is one UserError line, before anything opens."""
    patch = load_patch(s.patch)
    if s.patch is None and s.channel != 1:           # the default patch, on the channel asked for
        patch = dataclasses.replace(patch, layers=tuple(dataclasses.replace(la, channel=s.channel)
                                                        for la in patch.layers))
    elif s.channel != 1:
        log.warning("--channel %d is ignored: the patch's layers set the channels", s.channel)
    port, virtual = s.port, s.virtual_port
    if port is not None and virtual is not None:
        raise UserError("--port: give either --port (connect to a synth) or --virtual-port, not both")
    if port is None and virtual is None:             # docs/PATCHES.md: --port and --virtual-port override
        port, virtual = patch.output.port, patch.output.virtual_port
    steering, emap = steering_of(s, s.motion_weight)
    emap = patched_map(emap, patch, s.models)
    cfg = EngineConfig(start_delay_s=start_delay_s, embed_fps=s.embed_fps, seed=s.seed, temperature=s.temperature,
                       top_p=s.top_p, steering=steering, emotion_map=emap, decoder=s.decoder, guidance=s.guidance,
                       generator=GeneratorConfig(lookahead_s=s.lookahead_ms / 1000,
                                                 tempo_scale=s.tempo_scale * patch.shaping.tempo_scale,
                                                 channel=s.channel - 1))
    return Assembly(patch, port, virtual, cfg)


def steering_of(s, motion_weight: float = 0.0):
    """The hand settings (valence, arousal, key, emotion map) of ``s``, checked; a mistake is one line."""
    st = Steering(valence=s.valence, arousal=s.arousal, key=s.key, motion_weight=motion_weight)
    try:
        st.check()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    try:
        emap = emotion_map.load(s.emotion_map) if s.emotion_map else None
    except emotion_map.MapError as exc:
        raise UserError(f"--emotion-map: {exc}") from None
    return st, emap


def patched_map(emap, patch, models=None):
    """The emotion map with the patch's [emotion_map] table laid over it (None: no change)."""
    override = patch.emotion_map if patch is not None else None
    if not override:
        return emap
    try:
        base = emap or emotion_map.for_models(models or DEFAULT_DIR)
        return base.overridden(override, f"patch {patch.path}: emotion_map")
    except emotion_map.MapError as exc:
        raise UserError(str(exc)) from None
