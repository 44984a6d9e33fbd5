"""python -m installation.training: prepare the data, train, export and document the models.

    python -m installation.training all        # the whole pipeline, as shipped
    python -m installation.training prepare    # encoder ONNX + MIDI event cache + image feature cache
    python -m installation.training prepare-music   # the MIDI event cache alone (the shipped encoder untouched)
    python -m installation.training train      # pretrain + finetune (resumes from runs/<name>/)
    python -m installation.training export     # decoder ONNX, parity, emotion map, adherence, manifest, model card
    python -m installation.training image-emotion   # image -> valence/arousal model (the picture's mood)
    python -m installation.training emotion-map     # refit only the emotion map (time windows of 30 s)
    python -m installation.training train --decoder transformer    # the same pipeline for the Transformer (runs/transformer/)
    python -m installation.training export --decoder transformer   # transformer_step.onnx + transformer_manifest.json

One pipeline (installation/training/pipeline.py) for either decoder: --decoder picks the model and its defaults.

Run ``python -m installation.training all --help`` for the options.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from installation.errors import UserError

REPO = Path(__file__).resolve().parents[2]


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m installation.training", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["prepare", "prepare-music", "train", "export", "image-emotion", "emotion-map", "all"])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="the shared data folder")
    ap.add_argument("--out", type=Path, default=REPO / "exported_models", help="where the ONNX models go")
    ap.add_argument("--cache", type=Path, default=REPO / ".cache" / "prep", help="event and feature caches")
    ap.add_argument("--decoder", default="gru", choices=["gru", "transformer"],
                    help="which music model to train or export (train and export only)")
    ap.add_argument("--run", type=Path, default=None,
                    help="checkpoints and logs of this run (default: runs/shipped, or runs/transformer)")
    ap.add_argument("--pop909", action="store_true",
                    help="prepare-music/train/export: also POP909 (unstretched, pre-training only; cache music_pop909.npz)")
    ap.add_argument("--backbone", default="efficientnet_lite0", choices=["efficientnet_lite0", "resnet18"])
    ap.add_argument("--weights", default=None, help="backbone weights file (resnet18: a torchvision state_dict)")
    ap.add_argument("--warm-start", type=Path, default=None,
                    help="train (GRU): start from the GRU exported in this folder (its ONNX weights, checked and extended "
                         "to the pedal and the chord control; installation/training/warm_start.py)")
    ap.add_argument("--pretrain-minutes", type=float, default=None,
                    help="a wall-time budget for pre-training (the cosine follows it; the phase stops when spent)")
    ap.add_argument("--finetune-minutes", type=float, default=None, help="the same for fine-tuning")
    ap.add_argument("--refit-emotion-map", action="store_true",
                    help="export: refit the emotion map too (by default an existing emotion_map.toml is kept)")
    ap.add_argument("--patience", type=int, default=3, help="evaluations without improvement before a phase stops")
    ap.add_argument("--pretrain-lr", type=float, default=None, help="pre-training's peak learning rate (default: 2e-3 / 1e-3)")
    ap.add_argument("--finetune-lr", "--gru-finetune-lr", type=float, default=None,
                    help="fine-tuning's peak learning rate (default: 1e-3 / 5e-4)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on 2 shared cores)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                    help="where to train: auto = a CUDA GPU when torch sees one, else the CPU")
    ap.add_argument("--hidden", type=int, default=320)
    ap.add_argument("--layers", type=int, default=None, help="GRU or Transformer layers (default: 2 / 4)")
    ap.add_argument("--d-model", type=int, default=160, help="Transformer width")
    ap.add_argument("--heads", type=int, default=4, help="Transformer attention heads")
    ap.add_argument("--window", type=int, default=512, help="Transformer attention window (events)")
    ap.add_argument("--budget-min", type=float, default=None,
                    help="train in about this many minutes (CPU: sizes the step counts; GPU: a wall-time budget)")
    ap.add_argument("--wall-budget", action="store_true",
                    help="--budget-min is wall time (the default on a GPU) rather than a step count fitted here")
    ap.add_argument("--finetune-share", type=float, default=1 / 3,
                    help="on a GPU: the share of --budget-min (wall time) given to fine-tuning")
    ap.add_argument("--warmup", type=int, default=0, help="learning-rate warm-up steps (a quarter in fine-tuning)")
    ap.add_argument("--finetune-eval-every", type=int, default=None, help="steps between validations in fine-tuning")
    ap.add_argument("--snapshot-dir", type=Path, default=None,
                    help="train: also write each phase's best weights here as fp16 files under 15 MiB (a GPU lease's way back)")
    ap.add_argument("--pretrain-steps", type=int, default=None, help="default: 1600 (GRU), 900 (Transformer)")
    ap.add_argument("--finetune-steps", type=int, default=None, help="default: 1200 (GRU), 400 (Transformer)")
    ap.add_argument("--batch", type=int, default=None, help="default: 48 (GRU), 32 (Transformer)")
    ap.add_argument("--seq-len", type=int, default=None, help="default: 192 (GRU), 256 (Transformer)")
    ap.add_argument("--eval-every", type=int, default=None, help="steps between validations (default: 100 / 50)")
    ap.add_argument("--report-pieces", type=int, default=48,
                    help="export: pieces per mode for the adherence report and the guidance choice (fewer: a quick check)")
    ap.add_argument("--limit-files", type=int, default=None, help="use only N MIDI files per set (a quick pipeline check)")
    ap.add_argument("--limit-images", type=int, default=None, help="use only N images (a quick pipeline check)")
    args = ap.parse_args(argv)
    # lazy: --help and a bad option answer without loading the pipeline (numpy, pandas...)
    from installation.training.pipeline import DEFAULTS
    for name, value in DEFAULTS[args.decoder].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main(argv=None) -> int:
    args = parse(argv)
    # lazy: --help and a bad option answer without loading the pipeline (numpy, pandas...)
    from installation.training import data as D, pipeline
    steps = ["prepare", "train", "export", "image-emotion"] if args.command == "all" else [args.command]
    try:
        D.start_command(args.data)
        for step in steps:
            getattr(pipeline, step.replace("-", "_"))(args)
    except (ValueError, FileNotFoundError, UserError) as exc:   # bad options or files: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
