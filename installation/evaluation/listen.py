"""python -m installation.evaluation.listen: a few pieces of every quadrant, as MIDI and as audio, to listen to.

    python -m installation.evaluation.listen                      # reports/listen/Q1_0.mid, Q1_0.wav, ...
    python -m installation.evaluation.listen --pieces 2 --seconds 20 --no-critic --out reports/listen-plain
    python -m installation.evaluation.listen --pieces 1 --picture docs/evaluation/listen_rolls.png

With a harmony model beside the decoder (``harmony.json``), each piece follows its own chord plan
(``--no-harmony``: the chord control unset). ``--picture`` draws each quadrant's first piece as a piano roll
with the sustain pedal and the chords asked.

The decoder is told each corner of the valence/arousal square (+-0.8) through the
conductor, as ``--valence/--arousal`` do; each piece is written as MIDI and rendered
to WAV by the FluidSynth program with a General MIDI SoundFont (``fluidsynth -ni -F``,
faster than real time). Without FluidSynth only the MIDI files are written.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
CORNERS = {"Q1": (0.8, 0.8), "Q2": (-0.8, 0.8), "Q3": (-0.8, -0.8), "Q4": (0.8, -0.8)}
SOUNDFONTS = (Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"), Path("/usr/share/sounds/sf2/default-GM.sf2"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m installation.evaluation.listen", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, default=REPO / "exported_models")
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "listen")
    ap.add_argument("--pieces", type=int, default=3, help="pieces per quadrant")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-critic", action="store_true", help="one candidate per phrase")
    ap.add_argument("--soundfont", type=Path, default=None)
    ap.add_argument("--no-harmony", action="store_true", help="no chord plan: the chord control unset")
    ap.add_argument("--picture", type=Path, default=None, help="also draw the pieces' piano rolls (PNG) here")
    args = ap.parse_args(argv)
    from installation import manifest as M
    from installation.mood import emotion_map
    from installation.mood.conductor import Steering
    from installation.music import events as E
    from installation.music.decoder import open_decoder
    from installation.music.render import RenderSettings, directions, generate, harmony_plans

    man = M.load(args.models)
    dec = open_decoder(man)
    emap = emotion_map.for_models(man.folder)
    args.out.mkdir(parents=True, exist_ok=True)
    names, ds = [], []
    for q, (v, a) in CORNERS.items():
        for i in range(args.pieces):
            names.append(f"{q}_{i}")
            ds.append(directions(np.zeros((1, 2), np.float32), [names[-1]], Steering(valence=v, arousal=a), emap,
                                 man.key_templates, args.seed)[0])
    s = RenderSettings(seconds=args.seconds, seed=args.seed)
    if args.no_critic:
        s = replace(s, candidates=1)
    plans = None if args.no_harmony else harmony_plans(man.folder, ds, names, args.seed)
    seqs = generate(dec, np.stack([d.controls for d in ds]), names, s, plans)
    sf = args.soundfont or next((p for p in SOUNDFONTS if p.is_file()), None)
    synth = shutil.which("fluidsynth")
    for name, seq, d in zip(names, seqs, ds):
        mid = args.out / f"{name}.mid"
        E.events_to_midi(seq, mid)
        line = f"{mid}  ({d.targets.describe()})"
        if synth and sf:
            wav = mid.with_suffix(".wav")
            subprocess.run([synth, "-ni", "-g", "0.8", "-r", "44100", "-F", str(wav), str(sf), str(mid)],
                           check=True, capture_output=True, timeout=300)
            line += f"  -> {wav.name}"
        print(line)
    if args.picture:
        from installation.evaluation import plots

        rows = []
        for k, (name, seq, d) in enumerate(zip(names, seqs, ds)):
            if not name.endswith("_0"):
                continue
            keys, pedal = E.events_to_performance(seq)
            changes = []
            if plans is not None and plans[k] is not None:
                t, last = 0.0, None
                while t < args.seconds:
                    c = plans[k].chord_at(t)
                    if c is not None and c.name != last:
                        changes.append((t, c.name))
                        last = c.name
                    t += 0.25
            q = int(name[1]) - 1
            rows.append((f"{name}: {d.targets.describe()}", keys, pedal, changes, plots.QCOLORS[q]))
        args.picture.parent.mkdir(parents=True, exist_ok=True)
        plots.listening_rolls(rows, args.picture, args.seconds, "python -m installation.evaluation.listen: one piece "
                              "per quadrant")
        print(f"piano rolls: {args.picture}")
    if not (synth and sf):
        print("FluidSynth or a General MIDI SoundFont is missing (apt install fluidsynth fluid-soundfont-gm): "
              "MIDI files only", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
