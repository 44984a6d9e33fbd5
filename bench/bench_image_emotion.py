"""Image-emotion costs per frame: colour statistics, the valence/arousal model, the motion meter, crop averaging.

- ``frame_stats``: installation.image.image_stats on each artwork at its own size and on a 1280x720 camera frame.
- ``predict``: ImageEmotion.predict for one frame (statistics + image_emotion.onnx), given the encoder outputs.
- ``frame_to_va``: ImageEmotion.read on one artwork: preprocessing, the one encoder pass (with the tuned
  branch when the encoder has one), statistics and image_emotion.onnx: a frame to its valence and arousal.
- ``motion``: MotionMeter.update on a 1280x720 frame.
- ``encoder_1_view`` vs ``encoder_6_views``: what averaging the six training views at run time would cost
  (it was measured not to help on held-out images, docs/IMAGE_EMOTION.md, so the runtime uses the centre view).
"""
from __future__ import annotations

import time

import numpy as np

import common


def timed(fn, n: int, warmup: int = 10) -> dict:
    out = []
    for i in range(warmup + n):
        t0 = time.perf_counter()
        fn(i)
        if i >= warmup:
            out.append(time.perf_counter() - t0)
    return common.summary(out, 1e3)


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("-n", type=int, default=300)
    ap.add_argument("--compare", default=None, metavar="MODELS",
                    help="another model folder (e.g. the models before a change): frame_to_va of both, interleaved "
                         "frame by frame, so a loaded machine slows both alike")
    args = ap.parse_args()
    n = 30 if args.quick else args.n
    busy = common.warn_if_busy()

    from installation.image.emotion import ImageEmotion
    from installation.image.encoder import ImageEncoder
    from installation.image.image_stats import frame_stats
    from installation.image.motion import MotionMeter
    from installation.image.preprocess import training_views

    models = common.load_models(args.models)
    frames = [img for _, img in common.artworks()]
    cam = np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    enc, emo = ImageEncoder(models, threads=1), ImageEmotion(models, threads=1)
    outs = [enc.encode([f]) for f in frames]
    meter = MotionMeter(2.0)
    views = [np.stack(training_views(f)) for f in frames]
    res = {"benchmark": "image_emotion", "machine": common.machine(), "busy_at_start": busy,
           "models": common.models_label(args.models), "samples": n, "feature_set": emo.feature_set,
           "frame_stats_artworks_ms": timed(lambda i: frame_stats(frames[i % len(frames)]), n),
           "frame_stats_1280x720_ms": timed(lambda i: frame_stats(cam), n),
           "predict_ms": timed(lambda i: emo.predict(outs[i % len(frames)]["embedding"], [frames[i % len(frames)]],
                                                      outs[i % len(frames)].get("features_mid"),
                                                      outs[i % len(frames)].get("tuned_va")), n),
           "frame_to_va_ms": timed(lambda i: emo.read(enc, [frames[i % len(frames)]]), n),
           "motion_update_1280x720_ms": timed(lambda i: meter.update(i / 30, cam), n),
           "encoder_1_view_ms": timed(lambda i: enc.session.run(None, {enc.input: views[i % len(frames)][:1]}), n // 3),
           "encoder_6_views_ms": timed(lambda i: enc.session.run(None, {enc.input: views[i % len(frames)]}), n // 3)}
    if args.compare:
        other = common.load_models(args.compare)
        enc2, emo2 = ImageEncoder(other, threads=1), ImageEmotion(other, threads=1)
        pair = [[], []]
        for i in range(10 + n):
            for k, (e, m) in enumerate(((enc, emo), (enc2, emo2))):
                t0 = time.perf_counter()
                m.read(e, [frames[i % len(frames)]])
                if i >= 10:
                    pair[k].append(time.perf_counter() - t0)
        res["interleaved"] = {"models": common.models_label(args.models), "compare": args.compare,
                              "frame_to_va_ms": common.summary(pair[0], 1e3),
                              "compare_frame_to_va_ms": common.summary(pair[1], 1e3)}
    for k, v in res.items():
        if k.endswith("_ms"):
            print(common.line(k[:-3], v))
    for k, v in res.get("interleaved", {}).items():
        if k.endswith("_ms"):
            print(common.line("interleaved " + k[:-3], v))
    common.write_result("image_emotion", res, args.out)


if __name__ == "__main__":
    main()
