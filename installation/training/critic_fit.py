"""Fit the in-product critic (installation/music/critic.py): real phrases against the shipped decoder's own.

    python -m installation.training.critic_fit                      # exported_models/critic.json + manifest entry
    python -m installation.training.critic_fit --candidates 4 --phrase-events 48 --pieces 160
    python -m installation.training.critic_fit --decoder transformer --rounds 2   # critic_transformer.json

Real phrases: EMOPIA training clips (sustain pedal applied), encoded to events and cut into
consecutive phrases of ``phrase_events`` events, the sounding notes carried from phrase to
phrase. Generated phrases: the shipped decoder (its guidance, impossible events masked, no
critic) playing ``--pieces`` pieces of 30 s for random valence/arousal (seed 1000, not the
evaluation's held-out images), cut the same way. A standardised logistic regression tells
them apart; its 5-fold cross-validated phrase AUC is written beside the coefficients.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from installation import manifest as M
from installation.measures.realism import auc
from installation.mood import emotion_map
from installation.mood.conductor import Steering
from installation.music import critic as CR, events as E
from installation.music.decoder import open_decoder
from installation.music.render import RenderSettings, directions, generate, harmony_plans
from installation.training import data as D

log = logging.getLogger("installation.training.critic_fit")
REPO = Path(__file__).resolve().parents[2]


def phrases_of(ev: np.ndarray, n: int) -> list[np.ndarray]:
    """Feature vectors of the consecutive ``n``-event phrases of one piece (the last, partial one dropped)."""
    s, h, pc, pedal = np.zeros(E.NUM_PITCHES, bool), np.zeros(E.NUM_PITCHES), np.zeros(12), False
    out = []
    for a in range(0, len(ev) - n + 1, n):
        x, extra = CR.phrase_features(ev[a:a + n], s, h, pc, pedal)
        s, h, pc, pedal = extra["sounding"], extra["held"], extra["pc"], extra["pedal"]
        out.append(x)
    return out


def real_phrases(root: Path, n: int, limit: int | None = None) -> np.ndarray:
    pieces = [p for p in D.list_music(root) if p.source == "emopia" and p.split == "train"]
    if limit:
        pieces = pieces[:: max(1, len(pieces) // limit)]
    rows = []
    for p in pieces:
        try:
            keys, pedal = E.load_performance(root / p.rel)
            rows += phrases_of(E.notes_to_events(keys, pedal=pedal).astype(np.int64), n)
        except E.MidiFileError:
            continue
    return np.array(rows)


def generated_phrases(models: Path, n: int, pieces: int, seed: int = 1000, critic: CR.Critic | None = None,
                      kind: str | None = None) -> np.ndarray:
    """Phrases of the shipped decoder (guided, masked) for random moods; with ``critic``, as that critic picks them."""
    man = M.load(models)
    for entry in man.data.get("decoders", {}).values():
        entry.pop("critic", None)                    # the decoder alone (an old critic.json may not fit this critic)
    dec = open_decoder(man, kind=kind)
    dec.critic = critic
    rng = np.random.default_rng(seed)
    va = rng.uniform(-1, 1, (pieces, 2)).astype(np.float32)
    keys = [f"critic-{i}" for i in range(pieces)]
    ds = directions(va, keys, Steering(), emotion_map.for_models(man.folder), man.key_templates, seed)
    seqs = generate(dec, np.stack([d.controls for d in ds]), keys, replace(RenderSettings(seconds=30.0, seed=seed),
                                                                         candidates=None if critic else 1),
                    harmony_plans(man.folder, ds, keys, seed))     # the chords asked, where the models plan them
    return np.array([x for s in seqs for x in phrases_of(np.asarray(s, np.int64), n)])


def fit(real: np.ndarray, gen: np.ndarray, *, candidates: int, phrase_events: int, mood_weight: float,
        seed: int = 0) -> tuple[CR.Critic, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.preprocessing import StandardScaler

    X = np.concatenate([real, gen])
    y = np.r_[np.ones(len(real), int), np.zeros(len(gen), int)]            # 1 = real
    sc = StandardScaler().fit(X)
    scale = np.where(sc.scale_ > 0, sc.scale_, 1.0)
    Z = CR.expand((X - sc.mean_) / scale)
    lr = LogisticRegression(C=1.0, max_iter=5000, class_weight="balanced")
    oof = cross_val_predict(lr, Z, y, cv=StratifiedKFold(5, shuffle=True, random_state=seed), method="predict_proba")
    lr.fit(Z, y)
    critic = CR.Critic(sc.mean_, scale, lr.coef_[0], float(lr.intercept_[0]), candidates, phrase_events, mood_weight)
    return critic, auc(y, oof[:, 1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m installation.training.critic_fit", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, default=REPO / "exported_models")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--decoder", default=None, choices=["gru", "transformer"],
                    help="whose critic to fit (default: the manifest's default decoder); the Transformer's is "
                         "critic_transformer.json")
    ap.add_argument("--candidates", type=int, default=4)
    ap.add_argument("--phrase-events", type=int, default=48)
    ap.add_argument("--mood-weight", type=float, default=1.0)
    ap.add_argument("--pieces", type=int, default=160, help="generated pieces of 30 s (per round)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="rounds: each after the first adds the music the last critic picks to the generated side")
    ap.add_argument("--real-limit", type=int, default=None, help="use about this many EMOPIA clips (a quick fit)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.data.is_dir():
        ap.exit(2, f"error: --data {args.data}: not a folder; pass the shared data folder\n")
    d = json.loads((args.models / "manifest.json").read_text())
    kind = args.decoder or d.get("default_decoder", "gru")
    if kind not in d.get("decoders", {}):
        ap.exit(2, f"error: --decoder {kind}: {args.models / 'manifest.json'} lists {', '.join(d.get('decoders', {}))}\n")
    real = real_phrases(args.data, args.phrase_events, args.real_limit)
    gen = generated_phrases(args.models, args.phrase_events, args.pieces, kind=kind)
    critic, phrase_auc = fit(real, gen, candidates=args.candidates, phrase_events=args.phrase_events,
                             mood_weight=args.mood_weight)
    for r in range(1, args.rounds):
        # the next round's critic also sees the music the last one picks, so it learns where that one overshoots
        picked = generated_phrases(args.models, args.phrase_events, args.pieces, seed=1000 + r, critic=critic, kind=kind)
        log.info("round %d: the last critic's picks are told from real at phrase AUC %.3f", r,
                 fit(real, picked, candidates=args.candidates, phrase_events=args.phrase_events,
                     mood_weight=args.mood_weight)[1])
        gen = np.concatenate([gen, picked])
        critic, phrase_auc = fit(real, gen, candidates=args.candidates, phrase_events=args.phrase_events,
                                 mood_weight=args.mood_weight)
    file = CR.file_for(kind)
    (args.models / file).write_text(json.dumps(critic.to_dict(), indent=2) + "\n")
    man_path = args.models / "manifest.json"
    d = json.loads(man_path.read_text())
    d["decoders"][kind]["critic"] = {
        "file": file, "candidates": critic.candidates, "phrase_events": critic.phrase_events,
        "mood_weight": critic.mood_weight, "phrases": {"real": int(len(real)), "generated": int(len(gen))},
        "rounds": args.rounds,
        "phrase_auc_cv5": round(phrase_auc, 4),
        "command": "python -m installation.training.critic_fit " + " ".join(sys.argv[1:] if argv is None else argv)}
    man_path.write_text(json.dumps(d, indent=2) + "\n")
    print(f"critic: {len(real)} real and {len(gen)} generated phrases of {args.phrase_events} events; "
          f"cross-validated phrase AUC {phrase_auc:.3f}; written to {args.models / file}")
    names = list(CR.FEATURE_NAMES) + [f"{n}^2" for n in CR.FEATURE_NAMES]
    for name, c in sorted(zip(names, critic.coef), key=lambda t: -abs(t[1]))[:12]:
        print(f"  {name:17s} {c:+.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
