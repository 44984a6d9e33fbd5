"""The ``render`` options this package adds (--workers, --ray-address, --gallery, --captions, --loudness),
their checks, and ``render(args)``: the command line's render, done as a collection job."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from installation.errors import UserError
from installation.kiosk.config import writable_folder

log = logging.getLogger("installation")

AUDIO_CHOICES = ("wav", "flac", "opus", "flac+opus")


def add_options(p) -> None:
    """Add this package's options to the ``render`` sub-command's parser."""
    g = p.add_argument_group("a whole collection")
    g.add_argument("--workers", type=int, default=None,
                   help="worker processes: 1 = this process on one core; above 1: a local Ray with that many "
                        "(default: this process, one thread a core, no Ray)")
    g.add_argument("--ray-address", default=None, metavar="HOST:PORT",
                   help="send the job to this Ray cluster (`ray start --head` printed it); workers default to its CPUs")
    g.add_argument("--gallery", action="store_true",
                   help="also write OUT/index.html: an accessible listening page (with --audio, players)")
    g.add_argument("--captions", default=None, metavar="CSV",
                   help="titles and alt texts for the gallery: a CSV with columns image (file name), title, alt")
    g.add_argument("--loudness", type=float, default=-16.0, metavar="LUFS",
                   help="--audio is normalised to this loudness, its peak kept under -1 dBFS (default -16)")


def settings_from(args, steering, emap, patch):
    """The checked Settings of a render command line (the models loaded once to resolve defaults)."""
    # lazy: numpy (models, job settings) only when render runs; cli.py's parser imports this module for --help
    from installation import manifest as M
    from installation.collection.job import Settings, models_sha256
    from installation.mood import emotion_map

    if args.workers is not None and not 1 <= args.workers <= 4096:
        raise UserError(f"--workers {args.workers}: give a number of worker processes, 1 or more")
    if not -40.0 <= args.loudness <= -6.0:
        raise UserError(f"--loudness {args.loudness}: choose a loudness between -40 and -6 LUFS (e.g. -16)")
    audio, sf2, gain = (), None, 0.5
    if args.audio:
        # lazy: numpy (audio) and the synth check only with --audio; --help stays light
        from installation.patches.audio import check_format
        from installation.midi.synth import check_extra
        synth_cfg = (patch.synth if patch else None) or {}
        sf2 = str(check_extra("--audio", args.soundfont or synth_cfg.get("soundfont")))   # all of it, or one line
        audio = tuple(args.audio.split("+"))
        for fmt in audio:
            check_format(fmt)
        gain = synth_cfg.get("gain", 0.5)
    models = M.load(args.models)
    decoder = args.decoder or models.default_decoder
    if decoder not in models.decoders:
        raise UserError(f"--decoder {decoder}: the models in {models.folder} have {', '.join(models.decoders)}; "
                        "choose one of those")
    return Settings(models=str(Path(models.folder).resolve()), models_sha256=models_sha256(models.folder),
                    decoder=decoder, guidance=args.guidance, seconds=args.seconds, seed=args.seed or 0,
                    temperature=args.temperature, top_p=args.top_p, steering=steering,
                    emotion_map=emap or emotion_map.for_models(models.folder), patch=patch, audio=audio,
                    soundfont=sf2, synth_gain=gain, loudness_lufs=args.loudness, batch=args.batch,
                    threads=max(1, min(os.cpu_count() or 1, 8)) if args.workers is None and not args.ray_address else 1)


def render(args, steering, emap, patch) -> int:
    """``render``: every image of the arguments into ``--out``, resumable; one line per failed image."""
    # lazy: numpy and cv2 only when render runs; cli.py's parser imports this module for --help
    from installation.collection.catalogue import read_captions
    from installation.collection.job import find_images
    from installation.collection.run import Job, run

    settings = settings_from(args, steering, emap, patch)
    images, skipped = find_images(args.images)
    captions = read_captions(Path(args.captions)) if args.captions else None
    out = writable_folder(args.out, "--out")         # made if needed, and a file really written there (root too)
    if captions is None:
        captions = _folder_captions(args.images)
    workers = args.workers if args.workers is not None or args.ray_address else 1
    if workers is None or workers > 1:                # says what to install before the long part
        # lazy: the cluster's modules (numpy) only with more than one worker
        from installation.collection.cluster import import_ray
        import_ray()
    job = Job(images, out, settings, workers=workers, ray_address=args.ray_address, gallery=args.gallery,
              captions=captions, skipped=skipped)
    s = run(job)
    log.info("%d images: %d rendered now (%d events), %d done before, %d failed; catalogue: %s",
             s.total, s.rendered, s.events, s.skipped, len(s.failed), out / "catalogue.csv")
    if s.not_images:
        log.warning("%d files of the folders were skipped (not images; each named above, and in the catalogue)",
                    s.not_images)
    if s.failed:
        first = s.failed[0]
        raise UserError(f"{len(s.failed)} of {s.total} images could not be rendered (first: {first['error']}); "
                        f"they are listed in {out / 'catalogue.csv'}; the others are done, and a rerun retries these")
    return 0


def _folder_captions(args) -> dict | None:
    """Without --captions, a folder's own ``captions.csv`` (as the bundled artworks have): its titles keep
    their capitals ("Astronaut Eileen Collins"), where a file name has lost them."""
    # lazy: csv and hashlib only when render runs; --help stays light
    from installation.collection.catalogue import read_captions

    found = [Path(a) / "captions.csv" for a in args if Path(a).is_dir() and (Path(a) / "captions.csv").is_file()]
    if not found:
        return None
    captions = {}
    for path in found:
        log.info("titles and alt texts from %s (--captions FILE to use others)", path)
        captions.update(read_captions(path))
    return captions
