"""A whole collection: images per minute on 1 and 2 workers, CPU efficiency against today's render, resume.

Images: N Emotion6 photographs (default 330; the first of each class in turn, by file name, read from
../shared/data in place), MIDI only, 30 s of music each, seed 0, the shipped GRU.

Runs, each into a fresh output folder, in this order:
1. baseline: the single-process batched render as `render` did it before the collection (load every image,
   one encoder pass in chunks of 16, directions, ``render.generate`` with batches of 64 on 1 thread,
   write each MIDI file); timed by wall clock and CPU (this process);
2. ``--workers 1``: the collection in this process (no Ray);
3. resume: the same job again (every image done: hashing, journal, catalogue compared, nothing written);
4. ``--workers 2``: the collection on a local Ray (started by the job, stopped after).
CPU: getrusage of this process plus every descendant process sampled from /proc (Ray's GCS, raylet and
workers descend from a local Ray's driver), so Ray's own overhead is in the total. The workers' own CPU (inside
``Renderer.render``) comes from the journal. Rendering phase: the busiest worker's summed batch wall time.
Projection for 100,000 images: N nodes x C cores at the images per worker CPU-minute measured here (a
worker with its core to itself), capped by what one driver process can feed (its CPU per image), plus the
measured start-up.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import common

EMOTION6 = common.REPO.parent / "shared" / "data" / "images" / "emotion6" / "images"


def pick(n: int) -> list[Path]:
    classes = sorted(d for d in EMOTION6.iterdir() if d.is_dir())
    files = [sorted(c.glob("*.jpg"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0) for c in classes]
    return [files[i % len(files)][i // len(files)] for i in range(n)]


def cpu() -> float:
    """This process's CPU seconds (all threads)."""
    s = resource.getrusage(resource.RUSAGE_SELF)
    return s.ru_utime + s.ru_stime


class Descendants:
    """CPU seconds of every process descended from this one (a local Ray's GCS, raylet, workers), sampled
    from /proc every 0.25 s while it runs: the last sample of each process counts (a process that ends
    between two samples loses at most 0.25 s of its CPU)."""

    def __init__(self):
        import threading
        self.seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def total(self) -> float:
        return sum(self.seen.values())

    def _run(self):
        hz, me = os.sysconf("SC_CLK_TCK"), os.getpid()
        while True:
            parent, ticks = {}, {}
            for d in Path("/proc").iterdir():
                if d.name.isdigit():
                    try:
                        f = (d / "stat").read_text().rsplit(")", 1)[1].split()
                        parent[int(d.name)], ticks[int(d.name)] = int(f[1]), int(f[11]) + int(f[12])
                    except (OSError, IndexError, ValueError):
                        pass
            for pid, t in ticks.items():
                q, hops = parent.get(pid), 0
                while q and q != me and hops < 32:
                    q, hops = parent.get(q), hops + 1
                if q == me and pid != me:
                    self.seen[pid] = t / hz
            if self._stop.wait(0.25):
                return


def baseline(paths: list[Path], out: Path, seconds: float) -> dict:
    """The render of before the collection, in one process and one decoding thread."""
    import numpy as np
    from installation import manifest as M
    from installation.image.emotion import ImageEmotion
    from installation.image.encoder import ImageEncoder
    from installation.image.preprocess import load_rgb
    from installation.mood import emotion_map
    from installation.mood.conductor import Steering
    from installation.music import events as E
    from installation.music.decoder import open_decoder
    from installation.music.render import RenderSettings, directions, generate, output_paths

    t0, c0 = time.perf_counter(), cpu()
    models = M.load(None)
    enc, feel = ImageEncoder(models, threads=1), ImageEmotion(models, threads=1)
    dec = open_decoder(models, threads=1)
    frames = [load_rgb(p) for p in paths]
    va = np.concatenate([feel.read(enc, frames[i:i + 16])[1] for i in range(0, len(frames), 16)])
    keys = [p.stem for p in paths]
    ds = directions(va, keys, Steering(), emotion_map.for_models(models.folder), models.key_templates, 0)
    seqs = generate(dec, np.stack([d.controls for d in ds]), keys, RenderSettings(seconds=seconds, batch=64, workers=1))
    for path, seq in zip(output_paths(paths, out), seqs):
        E.events_to_midi(seq, path)
    wall, used = time.perf_counter() - t0, cpu() - c0
    events = sum(len(s) for s in seqs)
    return {"wall_s": wall, "cpu_s": used, "events": events, "events_per_cpu_s": events / used,
            "images_per_min": 60 * len(paths) / wall}


def collection(paths: list[Path], out: Path, seconds: float, workers: int) -> dict:
    from installation import manifest as M
    from installation.collection.job import Settings, models_sha256
    from installation.collection.run import Job, run
    from installation.mood import emotion_map
    from installation.mood.conductor import Steering

    models = M.load(None)
    s = Settings(models=str(models.folder), models_sha256=models_sha256(models.folder), decoder=models.default_decoder,
                 guidance=None, seconds=seconds, seed=0, temperature=1.0, top_p=0.95, steering=Steering(),
                 emotion_map=emotion_map.for_models(models.folder), patch=None)
    t0, c0 = time.perf_counter(), cpu()
    with Descendants() as kids:
        summary = run(Job(paths, out, s, workers=workers))
    wall, used = time.perf_counter() - t0, cpu() - c0 + kids.total()
    recs = [json.loads(l) for l in (out / ".collection" / "journal.jsonl").read_text().splitlines()] \
        if (out / ".collection" / "journal.jsonl").exists() else []
    per_pid: dict = {}
    batches = {}
    for r in recs:
        batches[(r["pid"], r["batch_wall_s"], r["batch_cpu_s"])] = r
    for (pid, w, c), r in batches.items():
        d = per_pid.setdefault(pid, {"wall_s": 0.0, "cpu_s": 0.0, "batches": 0})
        d["wall_s"] += w
        d["cpu_s"] += c
        d["batches"] += 1
    worker_cpu = sum(d["cpu_s"] for d in per_pid.values())
    phase = max((d["wall_s"] for d in per_pid.values()), default=0.0)
    res = {"workers": workers, "wall_s": wall, "cpu_s": used, "events": summary.events,
           "rendered": summary.rendered, "skipped": summary.skipped, "failed": len(summary.failed),
           "images_per_min": 60 * summary.total / wall,
           "events_per_cpu_s": summary.events / used if summary.events else None,
           "worker_cpu_s": worker_cpu,
           "worker_events_per_cpu_s": summary.events / worker_cpu if worker_cpu else None,
           "render_phase_s": phase,
           "images_per_min_render_phase": 60 * summary.rendered / phase if phase else None,
           "overhead_s": wall - phase, "per_worker": per_pid, "ray_processes_cpu_s": kids.total(),
           "driver_cpu_s": used - kids.total()}
    return res


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("--images", type=int, default=330)
    ap.add_argument("--seconds", type=float, default=30.0)
    args = common.parse(ap, images=24)
    if not EMOTION6.is_dir():
        raise SystemExit(f"{EMOTION6} is missing: this benchmark reads Emotion6 in place")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    busy = common.warn_if_busy()
    paths = pick(args.images)
    tmp = Path(tempfile.mkdtemp(prefix="bench-collection-"))
    res = {"benchmark": "collection", "machine": common.machine(), "busy_at_start": busy,
           "images": args.images, "seconds": args.seconds}
    try:
        (tmp / "base").mkdir()
        res["baseline"] = b = baseline(paths, tmp / "base", args.seconds)
        print(f"baseline (one process, batched): {b['images_per_min']:.0f} images/min, "
              f"{b['events_per_cpu_s']:,.0f} events/CPU-s")
        res["workers_1"] = w1 = collection(paths, tmp / "w1", args.seconds, 1)
        print(f"--workers 1: {w1['images_per_min']:.0f} images/min, {w1['events_per_cpu_s']:,.0f} events/CPU-s "
              f"({w1['events_per_cpu_s'] / b['events_per_cpu_s']:.0%} of the baseline)")
        res["resume"] = r = collection(paths, tmp / "w1", args.seconds, 1)
        print(f"resume of the finished job: {r['wall_s']:.2f} s ({r['wall_s'] / w1['wall_s']:.1%} of the first run), "
              f"{r['skipped']} skipped, {r['rendered']} rendered")
        res["workers_2"] = w2 = collection(paths, tmp / "w2", args.seconds, 2)
        print(f"--workers 2: {w2['images_per_min']:.0f} images/min overall, "
              f"{w2['images_per_min_render_phase']:.0f} in the rendering phase; "
              f"{w2['events_per_cpu_s']:,.0f} events/CPU-s with Ray's own processes "
              f"({w2['events_per_cpu_s'] / b['events_per_cpu_s']:.0%} of the baseline), "
              f"{w2['worker_events_per_cpu_s']:,.0f} inside the workers "
              f"({w2['worker_events_per_cpu_s'] / b['events_per_cpu_s']:.0%}); overhead {w2['overhead_s']:.1f} s")
        res["speedup_2_over_1"] = w2["images_per_min"] / w1["images_per_min"]
        res["speedup_2_over_1_render_phase"] = w2["images_per_min_render_phase"] / w1["images_per_min_render_phase"]
        print(f"2 workers / 1 worker: {res['speedup_2_over_1']:.2f}x overall, "
              f"{res['speedup_2_over_1_render_phase']:.2f}x in the rendering phase")
        # a worker with a core to itself: images per CPU-minute inside the workers (wall rates on this
        # shared machine say more about the other tenants than about the code)
        per_core = 60 * w2["rendered"] / w2["worker_cpu_s"]
        res["images_per_worker_cpu_min"] = per_core
        print(f"per core: {per_core:,.0f} images per worker CPU-minute")
        driver_s = w2["driver_cpu_s"] / args.images                     # the driver process's CPU per image
        cap = 60 / driver_s                                             # what one driver core can feed
        res["driver_cpu_s_per_image"] = driver_s
        res["driver_cap_images_per_min"] = cap
        print(f"driver CPU per image (hash, send, write, journal; its start-up included): {driver_s * 1000:.1f} ms: "
              f"one driver feeds at most {cap:,.0f} images/min")
        res["projection"] = proj = []
        for nodes, cores in ((1, 2), (4, 2), (4, 16), (10, 16), (50, 16)):
            rate = min(per_core * nodes * cores, cap)
            minutes = 100_000 / rate + w2["overhead_s"] / 60
            proj.append({"nodes": nodes, "cores_per_node": cores, "images_per_min": rate, "minutes": minutes,
                         "driver_bound": rate == cap})
            print(f"100,000 images on {nodes} node(s) x {cores} cores: {rate:,.0f} images/min, {minutes:,.0f} min"
                  + (" (the driver is the limit)" if rate == cap else ""))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res["machine_after"] = {"loadavg": os.getloadavg()}
    common.write_result("collection", res, args.out)


if __name__ == "__main__":
    main()
