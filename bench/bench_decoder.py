"""Decoder step latency at batch 1 (Performer.next: ONNX step + sampling), and events made vs needed per second.

- Step latency: one Performer (the live engine's voice, 1 onnxruntime thread)
  conditioned on each artwork in turn, timed call by call; the ONNX run and the
  sampling are also timed apart on the same calls.
- Events needed: the model's own output. installation.music.render.generate makes
  ``--seconds`` of music for every artwork; events / seconds is the rate the
  live engine must keep up with (mean over the artworks, and the busiest
  1-second window anywhere, which is what the look-ahead must absorb).
- Headroom = events generated per second (1 / mean step time) / events needed per second.
"""
from __future__ import annotations

import time

import numpy as np

import common


def needed_rates(decoder, ctrl, names, seconds: float) -> dict:
    from installation.music import events as E
    from installation.music.render import RenderSettings, generate

    seqs = generate(decoder, ctrl, names, RenderSettings(seconds=seconds, seed=0, batch=len(ctrl)))
    per = []
    peak = 0
    for name, seq in zip(names, seqs):
        seq = np.asarray(seq, np.int64)
        shift = np.where((seq >= E.TIME_SHIFT) & (seq < E.TIME_SHIFT + E.NUM_TIME_SHIFTS), seq - E.TIME_SHIFT + 1, 0)
        t = np.cumsum(shift) / E.STEPS_PER_SECOND               # music time of each event
        dur = float(t[-1])
        # busiest 1 s window: events with time in [a, a+1)
        j = np.searchsorted(t, t + 1.0, side="left")
        busiest = int((j - np.arange(len(t))).max())
        peak = max(peak, busiest)
        n_on = int(((seq >= E.NOTE_ON) & (seq < E.NOTE_ON + E.NUM_PITCHES)).sum())
        per.append({"image": name, "events": int(len(seq)), "music_s": dur, "events_per_s": len(seq) / dur,
                    "busiest_1s_window": busiest, "note_ons": n_on})
    rates = [p["events_per_s"] for p in per]
    return {"seconds_per_image": seconds, "per_image": per, "mean_events_per_s": float(np.mean(rates)),
            "max_events_per_s": float(np.max(rates)), "busiest_1s_window": peak}


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("-n", type=int, default=6000, help="timed steps")
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=60.0, help="music per artwork for the events-needed figure")
    args = common.parse(ap, n=600, seconds=10.0)
    n, seconds = args.n, args.seconds
    busy = common.warn_if_busy()

    from installation.music.decoder import Performer
    from installation.music.sampling import sample

    models = common.load_models(args.models)
    names, ctrl, decoder = common.artwork_decoder(models, args.decoder)      # as the live engine opens it
    h0 = decoder.initial(ctrl)

    per_image = max(1, (n + args.warmup) // len(names))
    total, onnx, samp = [], [], []
    for k in range(len(names)):
        p = Performer(decoder, seed=k, temperature=1.0, top_p=0.95)
        p.prime(decoder.row(h0, k))
        cond = ctrl[k]
        for i in range(per_image):
            # the call as the engine makes it ...
            t0 = time.perf_counter()
            p.next(cond)
            t1 = time.perf_counter()
            if k * per_image + i >= args.warmup:
                total.append(t1 - t0)
        # ... and its two halves, on a second pass
        hidden, last = decoder.row(h0, k), np.array([p.last[0]], np.int64)
        rng = np.random.default_rng(k)
        cond2 = cond[None].astype(np.float32)
        for i in range(per_image // 2):
            t0 = time.perf_counter()
            logits, hidden = decoder.step(last, hidden, cond2)
            t1 = time.perf_counter()
            last = sample(logits, rng, 1.0, 0.95)
            t2 = time.perf_counter()
            if i >= 20:
                onnx.append(t1 - t0)
                samp.append(t2 - t1)

    st = common.summary(total, 1e3)
    made = 1000.0 / st["mean"]
    need = needed_rates(decoder, ctrl, names, seconds)
    res = {"benchmark": "decoder", "machine": common.machine(), "busy_at_start": busy,
           "models": common.models_label(args.models), "decoder": decoder.kind, "model_config": models.model_config,
           "onnx_threads": 1, "warmup": args.warmup,
           "step_ms": st, "onnx_run_ms": common.summary(onnx, 1e3), "sampling_ms": common.summary(samp, 1e3),
           "events_generated_per_s": made, "needed": need,
           "headroom_mean": made / need["mean_events_per_s"], "headroom_busiest_second": made / need["busiest_1s_window"]}
    mc = models.model_config
    print(f"decoder: {decoder.kind}" + (f" {mc['layers']} x {mc['hidden']}" if decoder.kind == "gru" else "")
          + ", batch 1, 1 onnxruntime thread")
    print(common.line("Performer.next (step + sampling)", st))
    print(common.line("  of which ONNX step", res["onnx_run_ms"]))
    print(common.line("  of which sampling", res["sampling_ms"]))
    print(f"events generated per second (1 / mean step): {made:,.0f}")
    print(f"events needed per second ({seconds:g} s per artwork): mean {need['mean_events_per_s']:.1f}, "
          f"highest artwork {need['max_events_per_s']:.1f}, busiest 1-s window {need['busiest_1s_window']}")
    print(f"headroom: {res['headroom_mean']:.0f}x the mean rate, {res['headroom_busiest_second']:.0f}x the busiest second")
    common.write_result("decoder", res, args.out)


if __name__ == "__main__":
    main()
