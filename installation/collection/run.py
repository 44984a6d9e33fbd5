"""The driver of a collection job: what is done already, what to render, writing each result as it comes.

    images -> sha256 -> work keys -> (journal: done?) -> batches -> Renderer (here, or Ray actors)
           -> files written atomically -> journal record -> progress -> catalogue (+ gallery)

Only the driver writes into OUT. A result is done once its files are in place under their names
(each written atomically) and its journal record is fsync'd, in that order, so a run killed at any
point is rerun to completion, and a finished job run again rewrites nothing. The catalogue and the
gallery list a result as done only once the journal holds it; a full disk stops the run with one line.
"""
from __future__ import annotations

import errno
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

from installation.collection import catalogue, cluster, gallery, store
from installation.collection.job import (MAX_BATCH_BYTES, Image, Item, Settings, Skipped, list_images, open_regular,
                                         shown)
from installation.collection.progress import Progress
from installation.collection.renderer import MAX_IMAGE_BYTES, Outcome, Renderer
from installation.errors import UserError
from installation.image import header

log = logging.getLogger("installation")

SUFFIX = {"mid": ".mid", "wav": ".wav", "flac": ".flac", "opus": ".opus"}
MAX_BATCH_PIXELS = 64_000_000         # pixels in one batch at most (from the headers): a worker's decoded frames
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG)   # no later image could be written


@dataclass
class Job:
    """A whole collection to render into ``out``."""
    images: list                            # (path, name in the collection) pairs, or paths
    out: Path
    settings: Settings
    workers: int | None = None              # None: 1 here, or every CPU of the cluster at ray_address
    ray_address: str | None = None
    gallery: bool = False
    captions: dict | None = None              # file name -> {"title", "alt"}
    skipped: list[Skipped] = field(default_factory=list)   # files of the folders that are not images


@dataclass
class Summary:
    """What a run did."""
    total: int
    skipped: int                              # found done
    rendered: int
    failed: list[dict]                        # journal records of the images that failed
    events: int
    not_images: int = 0                       # files of the folders skipped (not images: see the catalogue)


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
            records, full = [], None
            for o in outcomes:
                im = by_index[o.index]
                try:
                    rec = _record(im, o, fp, job, out)
                except OSError as exc:
                    if exc.errno in DISK_FULL:         # the disk, not the image: journal what is in place, stop
                        full = exc
                        break
                    o.error = f"{shown(im.rel)}: cannot write its files into --out ({exc.strerror or exc})"
                    rec = _record(im, o, fp, job, out)
                if o.error is None or not _same_failure(latest.get(im.name), rec):
                    records.append(rec)
                if o.error is None:                   # on a terminal the bar says it; in a log, a line each
                    log.log(logging.DEBUG if progress.tty else logging.INFO, "%s: %d events; %s",
                            shown(str(out / rec["files"]["mid"])), o.events, o.row.get("asked", ""))
                else:
                    log.error("%s", o.error)
            try:
                journal.append(records)
            except OSError as exc:
                if exc.errno not in DISK_FULL:
                    raise
                full = exc
                records = []
            for rec in records:                       # done only once the journal holds it
                latest[rec["name"]] = rec
                if rec["status"] == "ok":
                    summary.rendered += 1
                    summary.events += rec.get("events") or 0
            progress.update(len(outcomes))
            if full is not None:
                raise UserError(f"--out {out}: cannot write there any more ({full.strerror or full}); "
                                f"{summary.rendered} images were rendered and recorded in this run; "
                                "free some space and run the same command again to render the rest") from None

        for sk in job.skipped:
            log.warning("skipped %s: %s", shown(sk.rel), sk.why)
        ok = False
        try:
            if todo:
                _dispatch(job, todo, take)
            ok = True
        finally:
            if todo:
                progress.close()
            rows = [catalogue.row(_with_captions(_current(latest.get(im.name), im, fp), im, job.captions))
                    for im in images] + [catalogue.row(_skipped(sk)) for sk in job.skipped]
            _publish(job, rows, raise_errors=ok)
    summary.failed = [r for r in rows if r["status"] not in ("ok", "skipped")]
    summary.not_images = len(job.skipped)
    return summary


def _publish(job: Job, rows: list[dict], raise_errors: bool) -> None:
    """The catalogue (and gallery) of what the journal holds; a full disk is one line, never a traceback."""
    try:
        catalogue.write(job.out, rows)
        if job.gallery:
            gallery.write(job.out, rows)
    except OSError as exc:
        msg = (f"--out {job.out}: cannot write the catalogue ({exc.strerror or exc}); "
               "free some space and run the same command again")
        if raise_errors:
            raise UserError(msg) from None
        log.error("%s", msg)


def _skipped(sk: Skipped) -> dict:
    return {"name": None, "rel": sk.rel, "status": "skipped", "error": sk.why,
            "title": catalogue.title_of(Path(sk.rel).stem)}


def _current(rec: dict | None, im: Image, fp: str) -> dict:
    """The image's record for these settings, or a 'pending' one (not rendered with them yet)."""
    key = im.work_key(fp)
    if rec is not None and rec.get("work_key") == key:
        return rec
    return {"name": im.name, "rel": im.rel, "image_sha256": im.sha256, "work_key": key, "status": "pending",
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
    rec = {"name": im.name, "image": str(im.path), "rel": im.rel, "image_sha256": im.sha256, "work_key": im.work_key(fp),
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
    cap = (captions or {}).get(Path(im.rel).name, {})
    title = cap.get("title") or catalogue.title_of(im.key)
    return dict(rec, rel=im.rel, title=title, alt_text=cap.get("alt") or f"{title} (no description given)")


def batch_sizes(n: int, workers: int, batch: int) -> int:
    """Images per batch: at most ``batch``, and the work divided evenly over the workers."""
    count = workers * math.ceil(n / (workers * batch))
    return max(1, math.ceil(n / count))


def _batches(todo: list[Image], size: int):
    """Batches of ``size`` images with their bytes, cut short at MAX_BATCH_BYTES or MAX_BATCH_PIXELS (large scans)."""
    batch, nbytes, pixels = [], 0, 0
    for im in todo:
        data = _read(im.path)
        batch.append(Item(im.index, im.name, im.key, shown(im.rel), data))
        w, h = header.size(data) or (0, 0)
        nbytes, pixels = nbytes + len(data), pixels + min(w * h, header.MAX_PIXELS)
        if len(batch) >= size or nbytes >= MAX_BATCH_BYTES or pixels >= MAX_BATCH_PIXELS:
            yield batch
            batch, nbytes, pixels = [], 0, 0
    if batch:
        yield batch


def _read(path: Path) -> bytes:
    """The file's bytes (one more than the worker accepts, at most), or none if it cannot be read now."""
    try:
        with open_regular(path) as f:
            return f.read(MAX_IMAGE_BYTES + 1)
    except OSError:
        return b""                                # the worker says "empty file" for it


def _dispatch(job: Job, todo: list[Image], take) -> None:
    s = job.settings
    if _in_process(job):
        renderer = Renderer(s)
        for batch in _batches(todo, batch_sizes(len(todo), 1, s.batch)):
            take(renderer.render(batch))
        return
    actors = cluster.start(job.workers, job.ray_address)
    try:
        size = batch_sizes(len(todo), actors, s.batch)
        log.info("%d Ray workers, batches of %d images", actors, size)
        cluster.run_batches(s, _batches(todo, size), actors, take)
    finally:
        cluster.stop()
