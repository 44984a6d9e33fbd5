"""Frame -> embedding latency: preprocessing (resize, crop, to tensor) + the ONNX image encoder.

Frames are the bundled artworks at their own sizes (300x451 .. 558x640), used in
turn; every frame is embedded one at a time (batch 1), as the live engine does.
Measured for 1 and 2 onnxruntime intra-op threads (a session of its own each),
after a warm-up; the three times of each sample (preprocess, encoder, total)
come from the same call.
"""
from __future__ import annotations

import time

import common


def run(models, threads: int, frames, n: int, warmup: int) -> dict:
    from installation.image.encoder import ImageEncoder
    from installation.image.preprocess import prepare

    enc = ImageEncoder(models, threads=threads)
    pre, inf, tot = [], [], []
    for i in range(warmup + n):
        img = frames[i % len(frames)][1]
        t0 = time.perf_counter()
        x = prepare(img)[None]
        t1 = time.perf_counter()
        enc.session.run(None, {enc.input: x})
        t2 = time.perf_counter()
        if i >= warmup:
            pre.append(t1 - t0)
            inf.append(t2 - t1)
            tot.append(t2 - t0)
    # the public call, for the record (same work: np.stack of one prepared frame + run)
    pub = []
    for i in range(min(n, 30)):
        t0 = time.perf_counter()
        enc.embed([frames[i % len(frames)][1]])
        pub.append(time.perf_counter() - t0)
    return {"threads": threads, "provider": enc.provider, "backbone": enc.backbone,
            "preprocess_ms": common.summary(pre, 1e3), "encoder_ms": common.summary(inf, 1e3),
            "total_ms": common.summary(tot, 1e3), "embed_call_ms": common.summary(pub, 1e3)}


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("-n", type=int, default=300, help="timed frames per thread count")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--threads", default="1,2", help="intra-op thread counts to try")
    args = ap.parse_args()
    n = 30 if args.quick else args.n
    busy = common.warn_if_busy()
    models = common.load_models(args.models)
    frames = common.artworks()
    res = {"benchmark": "encoder", "machine": common.machine(), "busy_at_start": busy,
           "models": common.models_label(args.models), "frames": [f"{name} {img.shape[1]}x{img.shape[0]}" for name, img in frames],
           "samples": n, "warmup": args.warmup, "runs": []}
    for t in (int(x) for x in args.threads.split(",")):
        r = run(models, t, frames, n, args.warmup)
        res["runs"].append(r)
        print(f"--- {t} intra-op thread(s), {r['backbone']} on {r['provider']}")
        for k in ("preprocess_ms", "encoder_ms", "total_ms"):
            print(common.line(f"  {k[:-3]}", r[k]))
        print(f"  -> {1000 / r['total_ms']['median']:.1f} frames/s at the median")
    common.write_result("encoder", res, args.out)


if __name__ == "__main__":
    main()
