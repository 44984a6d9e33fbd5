"""Model weights in fp16 files under a size limit: what a GPU run on a lease brings back.

    save_shards(state_dict, config, folder, "finetune")   # finetune.0.pt, finetune.1.pt, ... (each < 15 MiB)
    state_dict, config = load_shards(folder, "finetune")  # fp32 again, ready for load_state_dict

A lent GPU machine returns files of at most 16 MiB; a 6x384 Transformer is 46 MB in fp32, 23 MB in fp16.
Tensors are grouped whole into files (none is larger than the limit here); the first file carries the
model's config and the number of files, so a partial set is refused rather than half-loaded.
"""
from __future__ import annotations

from pathlib import Path

import torch

LIMIT = 15 * 2 ** 20            # bytes of tensor data per file


def save_shards(state_dict: dict, config: dict, folder: Path, prefix: str, limit: int = LIMIT) -> list[Path]:
    """Write ``state_dict`` (floating tensors as fp16) to ``folder/prefix.N.pt``; returns the paths.
    Written under a temporary name and renamed, so a run killed mid-write leaves the last whole set."""
    groups, size = [{}], 0
    for k, v in state_dict.items():
        v = v.detach().to("cpu")
        v = v.half() if v.is_floating_point() else v
        n = v.numel() * v.element_size()
        if groups[-1] and size + n > limit:
            groups.append({})
            size = 0
        groups[-1][k] = v
        size += n
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, g in enumerate(groups):
        path = folder / f"{prefix}.{i}.pt"
        tmp = path.with_suffix(".tmp")
        torch.save({"tensors": g, "config": config if i == 0 else None, "files": len(groups)}, tmp)
        tmp.replace(path)
        paths.append(path)
    return paths


def load_shards(folder: Path, prefix: str) -> tuple[dict, dict]:
    """-> (fp32 state_dict, config) from ``folder/prefix.N.pt``; FileNotFoundError if a file is missing."""
    first = torch.load(Path(folder) / f"{prefix}.0.pt", map_location="cpu", weights_only=True)
    state = dict(first["tensors"])
    for i in range(1, first["files"]):
        state.update(torch.load(Path(folder) / f"{prefix}.{i}.pt", map_location="cpu", weights_only=True)["tensors"])
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}, first["config"]


def main(argv=None) -> int:
    """python -m installation.training.shards SNAPSHOTS RUN [--phase finetune]: RUN/model.pt (fp32) from the
    fp16 files a GPU run brought back, for ``export --run RUN``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m installation.training.shards", description=main.__doc__)
    ap.add_argument("snapshots", type=Path)
    ap.add_argument("run", type=Path)
    ap.add_argument("--phase", default="finetune", choices=["pretrain", "finetune"])
    args = ap.parse_args(argv)
    state, config = load_shards(args.snapshots, args.phase)
    args.run.mkdir(parents=True, exist_ok=True)
    torch.save({"model": state, "config": config}, args.run / "model.pt")
    print(f"{args.run / 'model.pt'}: {sum(v.numel() for v in state.values())} values from {args.snapshots}/{args.phase}.*.pt")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
