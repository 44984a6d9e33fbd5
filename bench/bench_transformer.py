"""Transformer vs GRU decoder: step latency at batch 1 with the window full, and batched render throughput.

- Step latency: one voice, 1 onnxruntime thread, as the live engine runs it. The
  Transformer first plays ``window + warmup`` events, so every timed step attends
  to a full ring (its worst case, and its steady state after ~20 s of music).
  Timed per call: decoder.step + sampling (what Performer.next does), and the
  ONNX step alone on a second pass. Controls: the four Russell quadrants' emotion,
  one voice each.
- Render throughput: 64 performances of ``--seconds`` stepped as one batch on 1
  thread (installation.evaluation.coherence.perform: finished rows leave the
  batch), reported as events per CPU-second and seconds of music per CPU-second.

Both decoders come from the model folder (the GRU from manifest.json, the
Transformer from its manifest entry or transformer_manifest.json); a decoder the
folder lacks is skipped.
"""
from __future__ import annotations

import time

import numpy as np

import common


def latency(decoder, controls: np.ndarray, n: int, warmup: int) -> dict:
    from installation.music.decoder import PRIMER
    from installation.music.sampling import sample

    total, onnx = [], []
    per = max(1, n // len(controls))
    fill = getattr(decoder, "window", 0) + warmup
    for k, c in enumerate(controls):
        c = c[None].astype(np.float32)
        rng = np.random.default_rng(k)
        st = decoder.initial(c)
        st = decoder.blend(st, st, 1.0)
        last = np.array([PRIMER], np.int64)
        for i in range(fill + per):
            t0 = time.perf_counter()
            logits, st = decoder.step(last, st, c)
            last = sample(logits, rng, 1.0, 0.95)
            t1 = time.perf_counter()
            if i >= fill:
                total.append(t1 - t0)
        for i in range(per // 2):                    # the ONNX step alone, same full window
            t0 = time.perf_counter()
            logits, st = decoder.step(last, st, c)
            t1 = time.perf_counter()
            last = sample(logits, rng, 1.0, 0.95)
            onnx.append(t1 - t0)
    return {"step_and_sampling_ms": common.summary(total, 1e3), "onnx_step_ms": common.summary(onnx, 1e3)}


def throughput(decoder, controls: np.ndarray, seconds: float) -> dict:
    from installation.evaluation.coherence import perform

    c0, w0 = time.process_time(), time.perf_counter()
    seqs = perform(decoder, controls, seconds, seed=0)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    events = sum(len(s) for s in seqs)
    music = seconds * len(seqs)
    return {"rows": len(seqs), "seconds_each": seconds, "events": events, "cpu_s": cpu, "wall_s": wall,
            "events_per_cpu_s": events / cpu, "music_s_per_cpu_s": music / cpu, "music_s_per_wall_s": music / wall}


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("-n", type=int, default=4000, help="timed steps per decoder")
    ap.add_argument("--warmup", type=int, default=200, help="steps before timing (after the window is full)")
    ap.add_argument("--rows", type=int, default=64, help="render batch")
    ap.add_argument("--seconds", type=float, default=30.0, help="music per render row")
    ap.add_argument("--gru-models", default=None, help="take the GRU from this model folder (default: --models)")
    args = ap.parse_args()
    n, rows, seconds = (400, 8, 5.0) if args.quick else (args.n, args.rows, args.seconds)
    busy = common.warn_if_busy()

    from installation.mood import controls as C
    from installation.evaluation.coherence import _controls, load_decoders

    decoders = load_decoders(args.models, args.gru_models)
    quad = np.stack([C.encode(C.Targets(valence=v, arousal=a)) for v, a in ((0.8, 0.8), (-0.8, 0.8), (-0.8, -0.8), (0.8, -0.8))])
    res = {"benchmark": "transformer", "machine": common.machine(), "busy_at_start": busy,
           "models": common.models_label(args.models), "onnx_threads": 1, "decoders": {}}
    for name, dec in decoders.items():
        r = latency(dec, quad, n, args.warmup)
        r["render"] = throughput(dec, _controls(rows), seconds)
        r["config"] = getattr(dec, "config", None)
        res["decoders"][name] = r
        s, o, t = r["step_and_sampling_ms"], r["onnx_step_ms"], r["render"]
        label = f"{name} (window {dec.window} full)" if hasattr(dec, "window") else name
        print(common.line(f"{label}: step + sampling, batch 1", s))
        print(common.line(f"{label}: ONNX step alone", o))
        print(f"{label}: render {t['rows']} x {seconds:g} s on 1 thread: {t['events_per_cpu_s']:,.0f} events/CPU-s, "
              f"{t['music_s_per_cpu_s']:,.0f} music-s/CPU-s")
    common.write_result("transformer", res, args.out)


if __name__ == "__main__":
    main()
