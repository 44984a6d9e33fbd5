"""The frozen trunk's activations of the Emotion6 images, computed once for tuning the encoder's last blocks.

    OMP_NUM_THREADS=1 nice -n 10 python -m installation.training.emotion_cache --data ../shared/data

For every image and each of ``VIEWS`` (crops at three scales, see ``views``) it stores what the trainable
part starts from and what the readout uses beside it:

- ``block10`` (n, V, 112, 14, 14) float16: the output of EfficientNet-Lite0's block 10 (the input of the
  blocks that are tuned; nothing before it changes);
- ``mid`` (n, V, 192) float32: the encoder's ``features_mid`` (pooled blocks 7 and 10) of that view;
- ``stats`` (n, V, 9) float32: the colour/texture statistics (installation.image.image_stats) of that view.

View 0 is exactly the runtime's input (preprocess.prepare). The file is written in chunks of
``CHUNK`` images, so an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

from installation.image import image_stats
from installation.image.preprocess import CROP, crop_boxes, load_rgb, resize_shorter, to_tensor, training_views
from installation.training.data import load_emotion6

log = logging.getLogger("installation.training.emotion_cache")

REPO = Path(__file__).resolve().parents[2]
VIEW_NAMES = ("centre", "centre_mirror", "top_left", "top_right", "bottom_left", "bottom_right",
              "s224_centre", "s224_mirror", "s320_centre", "s320_mirror")
CHUNK = 150
TRUNK_END = 10                          # the last frozen block; blocks 11.. are tunable


def _centre(img: np.ndarray) -> np.ndarray:
    y, x = crop_boxes(*img.shape[:2])["center"]
    return img[y:y + CROP, x:x + CROP]


def views(rgb: np.ndarray) -> list[np.ndarray]:
    """Ten (3, 224, 224) float32 views: the six of preprocess.training_views (shorter side 256: centre,
    its mirror, four corners), then the centre and its mirror at shorter side 224 (the whole short side)
    and at 320 (a closer look)."""
    out = training_views(rgb)
    for size in (224, 320):
        c = _centre(resize_shorter(rgb, size))
        out += [to_tensor(c), to_tensor(c[:, ::-1])]
    return out


def trunk(net):
    """(N, 3, 224, 224) 0..255 -> (block 10 output, pooled blocks 7 + 10 = features_mid), frozen, no grad."""
    import torch

    eff = net.features.net

    def run(x: torch.Tensor):
        with torch.no_grad():
            x = x * net.scale - net.shift
            x = eff._swish(eff._bn0(eff._conv_stem(x)))
            pooled = []
            for idx, block in enumerate(eff._blocks[:TRUNK_END + 1]):
                x = block(x, drop_connect_rate=0.0)
                if idx in (7, 10):
                    pooled.append(x.mean(dim=(2, 3)))
            return x, torch.cat(pooled, 1)
    return run


def build_cache(data: Path, out: Path, limit: int | None = None) -> Path:
    import torch

    # lazy: torch (the backbone), only when the cache is built
    from installation.training.backbones import efficientnet_lite0
    images = load_emotion6(data)
    rel = images.rel[:limit] if limit else images.rel
    net, _ = efficientnet_lite0()
    run = trunk(net.eval())
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    for c0 in range(0, len(rel), CHUNK):
        f = out / f"chunk_{c0:05d}.npz"
        if f.exists():
            continue
        b10, mid, st = [], [], []
        for r in rel[c0:c0 + CHUNK]:
            vs = views(load_rgb(data / r))
            a, m = run(torch.from_numpy(np.stack(vs)))
            b10.append(a.numpy().astype(np.float16))
            mid.append(m.numpy())
            st.append([image_stats.window_stats(np.ascontiguousarray(v.transpose(1, 2, 0)).astype(np.uint8)) for v in vs])
        np.savez(f.with_suffix(".tmp.npz"), block10=np.stack(b10), mid=np.stack(mid).astype(np.float32),
                 stats=np.asarray(st, np.float32), rel=np.array(rel[c0:c0 + CHUNK], dtype=object))
        f.with_suffix(".tmp.npz").rename(f)
        log.info("trunk cache: %d/%d images, %.0f s", min(c0 + CHUNK, len(rel)), len(rel), time.time() - t0)
    return out


def load_cache(folder: Path, rel: list[str]) -> dict[str, np.ndarray]:
    """The chunks of ``folder`` joined, checked to be the images ``rel`` in order."""
    parts = [np.load(f, allow_pickle=True) for f in sorted(folder.glob("chunk_*.npz")) if ".tmp" not in f.name]
    got = [r for p in parts for r in p["rel"]]
    if got != rel:
        raise ValueError(f"{folder}: the cached images are not the {len(rel)} asked for ({len(got)} cached); "
                         "finish it with python -m installation.training.emotion_cache")
    return {k: np.concatenate([p[k] for p in parts]) for k in ("block10", "mid", "stats")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m installation.training.emotion_cache", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=REPO / ".cache" / "emotion_trunk")
    ap.add_argument("--limit-images", type=int, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not (args.data / "images" / "emotion6").is_dir():
        print(f"error: --data {args.data}: no images/emotion6 folder there", file=sys.stderr)
        return 2
    import torch
    torch.set_num_threads(1)
    build_cache(args.data, args.out, args.limit_images)
    return 0


if __name__ == "__main__":
    sys.exit(main())
