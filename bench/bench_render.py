"""Offline render throughput: installation.music.render.generate (batched ONNX) against a paper-style torch baseline.

Images: 64 photographs from ../shared/data/images/emotion6 (the first of each
class in turn, by file name), or, without that folder, the bundled artworks
and crops/mirror images of them. They are embedded first (not timed in the
render figure; the embedding time is reported apart).

Render: generate(decoder, embeddings, keys, RenderSettings(seconds, batch=64, workers=2))
as `run_installation.py render` calls it on 2 cores (two threads, each stepping
half of the rows, the GRU decoder with 1 onnxruntime thread); also 1 worker with 1
and with 2 onnxruntime threads. Timed: wall clock and this process's CPU time
(time.process_time, all threads).

Baseline, written the way the paper's code generates: torch eager, batch 1,
one event at a time: MusicModel(ModelConfig(**manifest['model_config'])),
``model.decoder.step`` per event under torch.no_grad(), sampling with
installation.music.sampling.sample (same temperature/top-p), until the image has
``seconds`` of music. Weights: the training checkpoint runs/shipped/model.pt
when it is there and matches the manifest (so the music, and its event rate,
is the shipped model's), else random weights (speed per event is the same;
music seconds are then converted with the render's events per second).
torch.set_num_threads(1) (and 2, reported apart).

Throughput = events per second and seconds of music per CPU second.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import common

EMOTION6 = common.REPO.parent / "shared" / "data" / "images" / "emotion6" / "images"


def pick_images(n: int) -> tuple[list[str], list[np.ndarray], str]:
    from installation.image.preprocess import load_rgb
    if EMOTION6.is_dir():
        classes = sorted(d for d in EMOTION6.iterdir() if d.is_dir())
        files = [sorted(c.glob("*.jpg"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0) for c in classes]
        chosen = []
        for i in range(n):
            cls = files[i % len(files)]
            chosen.append(cls[i // len(files)])
        return [f"{p.parent.name}_{p.stem}" for p in chosen], [load_rgb(p) for p in chosen], "emotion6"
    arts = common.artworks()
    names, imgs = [], []
    for i in range(n):
        name, img = arts[i % len(arts)]
        k = i // len(arts)
        h, w = img.shape[:2]
        f = 1.0 - 0.04 * (k % 8)
        y, x = int((h - h * f) * ((k * 37) % 10) / 10), int((w - w * f) * ((k * 53) % 10) / 10)
        v = img[y:y + int(h * f), x:x + int(w * f)]
        names.append(f"{Path(name).stem}_v{k}")
        imgs.append(np.ascontiguousarray(v[:, ::-1] if k % 2 else v))
    return names, imgs, "bundled artworks, crops and mirror images"


def music_seconds(seq) -> float:
    from installation.music import events as E
    s = np.asarray(seq, np.int64)
    shift = (s >= E.TIME_SHIFT) & (s < E.TIME_SHIFT + E.NUM_TIME_SHIFTS)
    return float((s[shift] - E.TIME_SHIFT + 1).sum()) / E.STEPS_PER_SECOND


def run_render(models, emb, keys, seconds: float, threads: int, workers: int = 1, kind: str | None = None) -> dict:
    """``emb``: the rows' control vectors (N, K)."""
    from installation.music.decoder import open_decoder
    from installation.music.render import RenderSettings, generate
    dec = open_decoder(models, kind=kind, threads=threads)
    s = RenderSettings(seconds=seconds, seed=0, batch=64, workers=workers)
    generate(dec, emb[:4], keys[:4], RenderSettings(seconds=2.0, seed=0, batch=64))     # warm-up
    w0, c0 = time.perf_counter(), time.process_time()
    seqs = generate(dec, emb, keys, s)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    events = sum(len(q) for q in seqs)
    music = sum(music_seconds(q) for q in seqs)
    return {"onnx_threads": threads, "workers": workers, "images": len(seqs), "events": events, "music_s": music,
            "wall_s": wall, "cpu_s": cpu, "events_per_wall_s": events / wall, "events_per_cpu_s": events / cpu,
            "music_s_per_wall_s": music / wall, "music_s_per_cpu_s": music / cpu,
            "events_per_music_s": events / music, "longest_sequence": max(len(q) for q in seqs)}


def baseline(models, emb, seconds: float, torch_threads: int, n_images: int, checkpoint: Path | None) -> dict:
    import torch
    from installation.music import events as E
    from installation.music.decoder import PRIMER
    from installation.music.sampling import sample
    from installation.training.model import ModelConfig, MusicModel

    torch.set_num_threads(torch_threads)
    cfg = ModelConfig(**models.model_config)
    model = MusicModel(cfg)
    weights = "random (torch default init)"
    if checkpoint is not None and checkpoint.is_file():
        ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if ck.get("config") == cfg.to_dict():
            model.load_state_dict(ck["model"])
            weights = f"trained ({checkpoint})"
    model.eval()
    steps_needed = int(round(seconds * E.STEPS_PER_SECOND))
    cap = int(200 * seconds) + 64
    events = 0
    music = 0.0
    w0, c0 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        for k in range(n_images):
            rng = np.random.default_rng(k)
            cond = torch.from_numpy(emb[k:k + 1])                               # the row's controls
            h = model.initial(cond)
            ev = torch.tensor([PRIMER], dtype=torch.long)
            clock = 0
            for _ in range(cap):
                logits, h = model.step(ev, h, cond)
                nxt = sample(logits.numpy(), rng, 1.0, 0.95)
                e = int(nxt[0])
                events += 1
                if E.TIME_SHIFT <= e < E.TIME_SHIFT + E.NUM_TIME_SHIFTS:
                    clock += e - E.TIME_SHIFT + 1
                ev = torch.from_numpy(nxt)
                if clock >= steps_needed:
                    break
            music += clock / E.STEPS_PER_SECOND
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {"torch": torch.__version__, "torch_threads": torch_threads, "weights": weights, "images": n_images,
            "events": events, "music_s": music, "wall_s": wall, "cpu_s": cpu,
            "events_per_wall_s": events / wall, "events_per_cpu_s": events / cpu,
            "music_s_per_cpu_s": music / cpu, "events_per_music_s": events / music}


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=30.0, help="music per image")
    ap.add_argument("--baseline-images", type=int, default=8)
    ap.add_argument("--torch-threads", default="1,2")
    ap.add_argument("--checkpoint", default=str(common.REPO / "runs" / "shipped" / "model.pt"),
                    help="torch weights for the baseline ('' for random weights)")
    args = ap.parse_args()
    n_img = 16 if args.quick else args.images
    seconds = 10.0 if args.quick else args.seconds
    n_base = 2 if args.quick else args.baseline_images
    busy = common.warn_if_busy()

    from installation.image.encoder import ImageEncoder
    models = common.load_models(args.models)
    keys, imgs, origin = pick_images(n_img)
    enc = ImageEncoder(models, threads=2)
    t0 = time.perf_counter()
    emb = np.concatenate([enc.embed(imgs[i:i + 16]) for i in range(0, len(imgs), 16)])
    embed_s = time.perf_counter() - t0
    emb, _ = common.artwork_controls(models, imgs, keys, emb)        # the rows' control vectors

    res = {"benchmark": "render", "machine": common.machine(), "busy_at_start": busy,
           "models": common.models_label(args.models), "model_config": models.model_config,
           "images": n_img, "image_source": origin, "seconds_per_image": seconds,
           "embed_all_images_s": embed_s, "render": [], "baseline": []}
    print(f"{n_img} images ({origin}), {seconds:g} s of music each; embedding them took {embed_s:.2f} s (2 threads)")
    for th, workers in ((1, 2), (1, 1), (2, 1)):        # first: as `run_installation.py render` does it
        r = run_render(models, emb, keys, seconds, th, workers, kind=args.decoder)
        res["render"].append(r)
        print(f"render, {workers} worker(s) x {th} onnx thread(s): {r['events']} events, {r['music_s']:.0f} s of music in "
              f"{r['wall_s']:.2f} s wall / {r['cpu_s']:.2f} s CPU -> {r['events_per_cpu_s']:,.0f} events/CPU-s, "
              f"{r['music_s_per_cpu_s']:.0f} music-s/CPU-s, {r['music_s_per_wall_s']:.0f} music-s/wall-s")
    ck = Path(args.checkpoint) if args.checkpoint else None
    for th in (int(x) for x in args.torch_threads.split(",")):
        b = baseline(models, emb, seconds, th, n_base, ck)
        res["baseline"].append(b)
        print(f"baseline torch eager batch 1, {th} thread(s), {b['weights']}: {b['events']} events in "
              f"{b['wall_s']:.2f} s wall / {b['cpu_s']:.2f} s CPU -> {b['events_per_cpu_s']:,.0f} events/CPU-s, "
              f"{b['events_per_wall_s']:,.0f} events/wall-s")
    best_r = res["render"][0]
    base1 = res["baseline"][0]
    rate = best_r["events_per_music_s"]            # the shipped model's events per second of music
    base_music_per_cpu = base1["events_per_cpu_s"] / rate
    res["speedup"] = {
        "events_per_cpu_s": best_r["events_per_cpu_s"] / base1["events_per_cpu_s"],
        "events_per_wall_s": best_r["events_per_wall_s"] / base1["events_per_wall_s"],
        "music_s_per_cpu_s": best_r["music_s_per_cpu_s"] / base_music_per_cpu,
        "note": "render as the CLI does (2 workers x 1 onnx thread) vs baseline torch 1 thread; baseline music-s/CPU-s = its events/CPU-s "
                "divided by the render's events per music second",
        "best_baseline_wall": best_r["events_per_wall_s"] / max(b["events_per_wall_s"] for b in res["baseline"]),
    }
    sp = res["speedup"]
    print(f"speed-up, events per CPU second: {sp['events_per_cpu_s']:.1f}x; per wall second: "
          f"{sp['events_per_wall_s']:.1f}x (vs the fastest baseline by wall clock: {sp['best_baseline_wall']:.1f}x)")
    res["aim"] = {"what": "render >= 20x the baseline", "met": sp["events_per_cpu_s"] >= 20}
    print(f"aim >= 20x: {'met' if res['aim']['met'] else 'NOT met'}")
    common.write_result("render", res, args.out)


if __name__ == "__main__":
    main()
