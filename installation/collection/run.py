"""The driver of a collection job: what is done already, what to render, writing each result as it comes.

    images -> sha256 -> work keys -> (journal: done?) -> batches -> Renderer (here, or Ray actors)
           -> files written atomically -> journal record -> progress -> catalogue (+ gallery)

Only the driver writes into OUT. A result is done once its files are in place under their names
(each written atomically) and its journal record is fsync'd, in that order, so a run killed at any
point is rerun to completion, and a finished job run again rewrites nothing.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

from installation.collection import catalogue, store
from installation.collection.job import MAX_BATCH_BYTES, Image, Item, Settings, list_images
from installation.collection.progress import Progress
from installation.collection.renderer import Outcome

log = logging.getLogger("installation")

SUFFIX = {"mid": ".mid", "wav": ".wav", "flac": ".flac", "opus": ".opus"}


@dataclass
class Job:
    """A whole collection to render into ``out``."""
    images: list[Path]
    out: Path
    settings: Settings
    workers: int | None = None              # None: 1 here, or every CPU of the cluster at ray_address
    ray_address: str | None = None
    gallery: bool = False
    captions: dict | None = None              # file name -> {"title", "alt"}


@dataclass
class Summary:
    """What a run did."""
    total: int
    skipped: int                              # found done
    rendered: int
    failed: list[dict]                        # journal records of the images that failed
    events: int


def run(job: Job) -> Summary:
    out, s = job.out, job.settings
    images = list_images(job.images)
    fp = s.fingerprint()
    with store.lock(out):
        journal = store.Journal(out)
        latest = journal.load()
        todo = [im for im in images if not _done(latest.get(im.name), im.work_key(fp), out)]
        by_index = {im.index: im for im in images}
        summary = Summary(len(images), len(images) - len(todo), 0, [], 0)
        if todo:
            log.info("%d of %d images to render (%d done before) on %s", len(todo), len(images),
                     summary.skipped, _where(job))
        progress = Progress(len(images), summary.skipped)

        def take(outcomes: list[Outcome]) -> None:
            records = []
            for o in outcomes:
                im = by_index[o.index]
                rec = _record(im, o, fp, job, out)
                if o.error is None or not _same_failure(latest.get(im.name), rec):
                    records.append(rec)
                    latest[im.name] = rec             # the same failure again keeps its first record
                if o.error is None:                   # on a terminal the bar says it; in a log, a line each
                    log.log(logging.DEBUG if progress.tty else logging.INFO, "%s: %d events; %s",
                            out / rec["files"]["mid"], o.events, o.row.get("asked", ""))
                    summary.rendered += 1
                    summary.events += o.events
                else:
                    log.error("%s", o.error)
            journal.append(records)
            progress.update(len(outcomes))

        try:
            if todo:
                _dispatch(job, todo, take)
        finally:
            if todo:
                progress.close()
            rows = [catalogue.row(_with_captions(_current(latest.get(im.name), im, fp), im, job.captions))
                    for im in images]
            catalogue.write(out, rows)
            if job.gallery:
                from installation.collection import gallery
                gallery.write(out, rows)
    summary.failed = [r for r in rows if r["status"] != "ok"]
    return summary


def _current(rec: dict | None, im: Image, fp: str) -> dict:
    """The image's record for these settings, or a 'pending' one (not rendered with them yet)."""
    key = im.work_key(fp)
    if rec is not None and rec.get("work_key") == key:
        return rec
    return {"name": im.name, "image_sha256": im.sha256, "work_key": key, "status": "pending",
            "error": "not rendered yet with these settings: run the command again"}


def _where(job: Job) -> str:
    if job.ray_address:
        return f"the Ray cluster at {job.ray_address}"
    return "this process" if _in_process(job) else f"{job.workers} Ray workers on this machine"


def _in_process(job: Job) -> bool:
    return (job.workers or 1) <= 1 and not job.ray_address


def _done(rec: dict | None, key: str, out: Path) -> bool:
    """True when the journal says this image was rendered with this work key and its files are all there."""
    if not rec or rec.get("work_key") != key or rec.get("status") != "ok":
        return False
    for kind, name in rec.get("files", {}).items():
        try:
            if (out / name).stat().st_size != rec["sizes"][kind]:
                return False
        except (OSError, KeyError):
            return False
    return True


def _same_failure(prev: dict | None, rec: dict) -> bool:
    return bool(prev) and prev.get("status") == "failed" and prev.get("work_key") == rec["work_key"] \
        and prev.get("error") == rec["error"]


def _record(im: Image, o: Outcome, fp: str, job: Job, out: Path) -> dict:
    """Write an outcome's files (atomically) and return its journal record."""
    s = job.settings
    rec = {"name": im.name, "image": str(im.path), "image_sha256": im.sha256, "work_key": im.work_key(fp),
           "decoder": s.decoder, "models_sha256": s.models_sha256, "seed": s.seed,
           "status": "failed" if o.error else "ok", "error": o.error, "files": {}, "sizes": {}, **o.row}
    if o.error:
        return rec
    for kind, data in o.files.items():
        if kind == "thumb":
            rel = f"thumbs/{im.name}-{im.sha256[:8]}.jpg"
            (out / "thumbs").mkdir(exist_ok=True)
        else:
            rel = im.name + SUFFIX[kind]
        store.write_atomic(out / rel, data)
        rec["files"][kind], rec["sizes"][kind] = rel, len(data)
    return rec


def _with_captions(rec: dict, im: Image, captions: dict | None) -> dict:
    cap = (captions or {}).get(im.path.name, {})
    title = cap.get("title") or catalogue.title_of(im.key)
    return dict(rec, image=str(im.path), title=title, alt_text=cap.get("alt") or f"{title} (no description given)")


def batch_sizes(n: int, workers: int, batch: int) -> int:
    """Images per batch: at most ``batch``, and the work divided evenly over the workers."""
    count = workers * math.ceil(n / (workers * batch))
    return max(1, math.ceil(n / count))


def _batches(todo: list[Image], size: int):
    """Batches of ``size`` images with their bytes, cut short at MAX_BATCH_BYTES (large scans)."""
    batch, nbytes = [], 0
    for im in todo:
        data = _read(im.path)
        batch.append(Item(im.index, im.name, im.key, str(im.path), data))
        nbytes += len(data)
        if len(batch) >= size or nbytes >= MAX_BATCH_BYTES:
            yield batch
            batch, nbytes = [], 0
    if batch:
        yield batch


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""                                # the worker says "empty file" for it


def _dispatch(job: Job, todo: list[Image], take) -> None:
    s = job.settings
    if _in_process(job):
        from installation.collection.renderer import Renderer
        renderer = Renderer(s)
        for batch in _batches(todo, batch_sizes(len(todo), 1, s.batch)):
            take(renderer.render(batch))
        return
    from installation.collection import cluster
    actors = cluster.start(job.workers, job.ray_address)
    try:
        size = batch_sizes(len(todo), actors, s.batch)
        log.info("%d Ray workers, batches of %d images", actors, size)
        cluster.run_batches(s, _batches(todo, size), actors, take)
    finally:
        cluster.stop()
