"""python -m installation.evaluation.realism_run: is the shipped music taken for real piano playing?

    python -m installation.evaluation.realism_run --out reports/realism.json
    python -m installation.evaluation.realism_run --decoder transformer --out reports/realism-transformer.json
    python -m installation.evaluation.realism_run --no-legal --out reports/realism-unmasked.json   # sampling without the legality mask

One 30 s piece per held-out Emotion6 image (the runtime's path: encoder -> image
emotion -> conductor -> decoder, seed 0), against EMOPIA's official test clips (their
first 30 s, sustain pedal applied), and the paper's 15 seed samples as a reference.
Prints and writes (``--out``, JSON) the real-vs-generated classifier's cross-validated
AUC, the per-feature gaps, each quadrant's median density against real music of that
quadrant, and the realism aims met or missed. ``--judge`` adds the emotion judge's
valence figures (trains it on EMOPIA train + VGMIDI labelled first: a few minutes).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from installation.measures import music_features as MF
from installation.measures import realism as RL
from installation.music import events as E

log = logging.getLogger("installation.evaluation.realism")
REPO = Path(__file__).resolve().parents[2]
SECONDS = 30.0
AIMS = {"auc": 0.85, "sounding_rel": 0.15, "chroma_abs": 0.03, "density_rel": 0.20, "tonic_abs": 0.04,
        "entropy_abs": 0.05, "long_abs": 0.01, "short_max": 0.012, "velocity_mid_abs": 0.08, "onsets_abs": 0.03}


def real_pieces(root: Path, *, split: str = "test", seconds: float = SECONDS) -> tuple[list, np.ndarray, list[str]]:
    """EMOPIA clips of ``split``: (notes of the first ``seconds`` from the first onset, quadrant, skipped files).
    Read with the pedal, then events and back, as training reads music and generated music is decoded."""
    from installation.training import data as D

    pieces, quads, skipped = [], [], []
    for p in D.list_music(root):
        if p.source != "emopia" or p.split != split:
            continue
        try:
            notes = heard_round_trip(root / p.rel)
        except E.MidiFileError as exc:
            log.warning("skipped %s", exc)
            skipped.append(p.rel)
            continue
        pieces.append(_first(notes, seconds))
        quads.append(p.quadrant)
    return pieces, np.array(quads), skipped


def seed_samples(root: Path, seconds: float = SECONDS) -> list:
    """The paper's 15 published samples, read like real music."""
    out = []
    for f in sorted((root / "seed_samples" / "midi").glob("*.mid")):
        try:
            out.append(_first(heard_round_trip(f), seconds))
        except E.MidiFileError as exc:
            log.warning("skipped %s", exc)
    return out


def heard_round_trip(path: Path) -> list:
    """A real MIDI file as the model's vocabulary holds it: keys and pedal -> events -> notes with the pedal applied."""
    keys, pedal = E.load_performance(path)
    return E.events_to_notes(E.notes_to_events(keys, pedal=pedal))


def _first(notes, seconds):
    w = MF.windows(notes, seconds, max_windows=1)
    return w[0][0] if w else []


def held_out_va(args, man, encoder=None) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(image paths, quadrant, rated valence, read valence/arousal (n, 2)) of held-out Emotion6 images with a quadrant;
    the read values are cached per encoder + image-emotion model in .cache/evaluation/."""
    from installation.training.data import load_emotion6

    images = load_emotion6(Path(args.data))
    idx = np.flatnonzero(images.test & (images.quadrant >= 0))
    if args.limit_images:
        idx = np.unique(idx[np.linspace(0, len(idx) - 1, min(args.limit_images, len(idx))).round().astype(int)])
    rel = [images.rel[i] for i in idx]
    tag = f"{man.io('encoder').get('sha256', '')[:12]}_{man.io('image_emotion').get('sha256', '')[:12]}"
    cache = REPO / ".cache" / "evaluation" / f"realism_va_{tag}.npz"
    va = None
    if cache.is_file():
        z = np.load(cache, allow_pickle=True)
        if list(z["rel"]) == rel:
            va = z["va"]
    if va is None:
        from installation.image.emotion import ImageEmotion
        from installation.image.encoder import ImageEncoder
        from installation.image.preprocess import load_rgb

        encoder = ImageEncoder(man, threads=args.threads)
        feel = ImageEmotion(man, threads=args.threads)
        va = np.concatenate([feel.read(encoder, [load_rgb(Path(args.data) / r) for r in rel[j:j + 16]])[1]
                             for j in range(0, len(rel), 16)])
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, rel=np.array(rel, dtype=object), va=va)
    return rel, images.quadrant[idx], images.valence[idx], np.asarray(va, np.float32)


def generate_pieces(args, man, rel, va) -> tuple[list[np.ndarray], np.ndarray]:
    """One piece per image (``--k`` per image) through the runtime's path; returns (event arrays, asked quadrant)."""
    from installation.mood import emotion_map
    from installation.mood.conductor import Steering
    from installation.music.decoder import open_decoder
    from installation.music.render import RenderSettings, directions, generate, harmony_plans

    dec = open_decoder(man, kind=args.decoder, threads=args.threads, guidance=args.guidance)
    emap = emotion_map.load(args.emotion_map) if args.emotion_map else emotion_map.for_models(man.folder)
    keys = [f"{r}#{k}" for r in rel for k in range(args.k)]
    vas = np.repeat(va, args.k, axis=0)
    settings = RenderSettings(seconds=args.seconds, seed=args.seed, temperature=args.temperature, top_p=args.top_p,
                              batch=args.batch)
    if args.no_legal:
        settings = replace(settings, legal=False)
    ds = directions(vas, keys, Steering(), emap, man.key_templates, args.seed)
    plans = None if args.no_harmony else harmony_plans(man.folder, ds, keys, args.seed)
    seqs = generate(dec, np.stack([d.controls for d in ds]), keys, settings, plans)
    asked = np.where(vas[:, 0] >= 0, np.where(vas[:, 1] >= 0, 0, 3), np.where(vas[:, 1] >= 0, 1, 2))
    return seqs, asked


def density_by_quadrant(R: np.ndarray, q: np.ndarray) -> dict[str, float]:
    j = RL.REALISM_NAMES.index("density")
    return {f"Q{k + 1}": float(np.nanmedian(R[q == k, j])) if (q == k).any() else float("nan") for k in range(4)}


def aims(sep: RL.Separability, gaps: dict, dens_gen: dict, dens_real: dict) -> dict:
    """Each realism aim: the measured figure and whether it is met."""
    s, c, t = gaps["sounding"], gaps["chroma_self_sim"], gaps["tonic_share"]
    rel_s = s["generated"] / s["real"] - 1
    out = {"auc": {"value": sep.auc, "aim": f"<= {AIMS['auc']}", "met": bool(sep.auc <= AIMS["auc"])},
           "sounding": {"value": rel_s, "aim": "within 15% of real", "met": bool(abs(rel_s) <= AIMS["sounding_rel"])},
           "chroma_self_sim": {"value": c["difference"], "aim": "within 0.03 of real",
                               "met": bool(abs(c["difference"]) <= AIMS["chroma_abs"])},
           "pc_transition_entropy": {"value": gaps["pc_transition_entropy"]["difference"], "aim": "within 0.05 of real",
                                     "met": bool(abs(gaps["pc_transition_entropy"]["difference"]) <= AIMS["entropy_abs"])},
           "long_notes": {"value": gaps["long_notes"]["difference"], "aim": "notes over 5 s within a point of real",
                          "met": bool(abs(gaps["long_notes"]["difference"]) <= AIMS["long_abs"])},
           "short_notes": {"value": gaps["short_notes"]["generated"], "aim": "notes under 40 ms at most 1.2%",
                           "met": bool(gaps["short_notes"]["generated"] <= AIMS["short_max"])},
           "velocity_mid": {"value": gaps["velocity_mid"]["difference"], "aim": "velocities 48-80 within 8 points",
                            "met": bool(abs(gaps["velocity_mid"]["difference"]) <= AIMS["velocity_mid_abs"])},
           "onsets_18ms": {"value": gaps["onsets_18ms"]["difference"], "aim": "onsets 1-18 ms apart within 3 points",
                           "met": bool(abs(gaps["onsets_18ms"]["difference"]) <= AIMS["onsets_abs"])},
           "tonic_share": {"value": t["difference"], "aim": "within 4 points of real",
                           "met": bool(abs(t["difference"]) <= AIMS["tonic_abs"])}}
    for q in dens_gen:
        rel_d = dens_gen[q] / dens_real[q] - 1
        out[f"density_{q}"] = {"value": rel_d, "aim": "median within 20% of real of the quadrant",
                               "met": bool(abs(rel_d) <= AIMS["density_rel"])}
    return out


def judge(args, seqs, rel, valence, asked_k) -> dict:
    """The emotion judge (the evaluation's classifier, trained on real music) on the generated pieces: valence figures."""
    from installation.evaluation import classifiers as CL
    from installation.evaluation import datasets as DS
    from installation.evaluation import metrics as MET
    from installation.evaluation.pipeline import generated_features

    mw = DS.load_music(args.data)
    tr = np.concatenate([mw.rows(source="emopia", split="train"), mw.rows(source="vgmidi_labelled")])
    va_rows = mw.rows(source="emopia", split="val")
    clf = CL.MusicEmotionClassifier().fit(mw.X[tr], mw.quadrant[tr], mw.X[va_rows], mw.quadrant[va_rows])
    X, ok, _, _ = generated_features(seqs, args.seconds)
    pv = np.full(len(X), 0.5)
    if ok.any():
        pv[ok] = clf.predict_proba(X[ok])["valence"]
    pv_img = pv.reshape(len(rel), args.k).mean(1)
    n = len(rel)
    est, lo, hi = MET.bootstrap_ci(lambda idx: MET.spearman(valence[idx], pv_img[idx]), n, resamples=1000, seed=0)
    told_v = (asked_k == 0) | (asked_k == 3)
    out = {"valence_rank_correlation": {"value": est, "ci95": [lo, hi]},
           "valence_agreement_with_asked": float(np.mean((pv > 0.5) == told_v))}
    if args.told:
        out["decoder_told_emotion"] = told(args, clf)
    return out


def told(args, clf) -> dict:
    """The evaluation's two decoder-alone checks, smaller: told each corner (``--told`` pieces a quadrant) and
    asked a key (``--told`` pieces a mode)."""
    from installation import manifest as M
    from installation.measures import adherence
    from installation.evaluation.pipeline import decoder_told
    from installation.mood import emotion_map
    from installation.music.decoder import open_decoder
    from installation.music.render import RenderSettings

    man = M.load(args.models)
    dec = open_decoder(man, kind=args.decoder, threads=args.threads, guidance=args.guidance)
    emap = emotion_map.load(args.emotion_map) if args.emotion_map else emotion_map.for_models(man.folder)
    s = RenderSettings(seconds=args.seconds, seed=args.seed, temperature=args.temperature, top_p=args.top_p,
                       batch=args.batch)
    out = decoder_told(man, dec, clf, s, emap, args.told, args.seconds, 1000, args.seed, harmony=not args.no_harmony)
    out["key_adherence"] = adherence.measure_key(dec, man.key_templates, s, n=args.told)
    return out


def run(args) -> dict:
    from installation import manifest as M

    t0 = time.time()
    man = M.load(args.models)
    rel, img_q, valence, va = held_out_va(args, man)
    seqs, asked = generate_pieces(args, man, rel, va)
    t_gen = time.time() - t0
    gen_notes = [MF.clip(E.events_to_notes(s), args.seconds) for s in seqs]
    real, real_q, skipped = real_pieces(Path(args.data), seconds=args.seconds)
    seed = seed_samples(Path(args.data), args.seconds)
    gR, gF = RL.describe_all(gen_notes, args.seconds)
    rR, rF = RL.describe_all(real, args.seconds)
    sR, sF = RL.describe_all(seed, args.seconds)
    both = lambda R, F: np.concatenate([R, F], axis=1)           # noqa: E731
    sep = RL.separability(both(rR, rF), both(gR, gF), seed=args.seed)
    sep_gb = RL.separability_gb(both(rR, rF), both(gR, gF), seed=args.seed)
    sep_seed = RL.separability(both(rR, rF), both(sR, sF), seed=args.seed)
    g = RL.gaps(rR, gR)
    dg, dr = density_by_quadrant(gR, asked), density_by_quadrant(rR, real_q)
    res = {
        "command": "python -m installation.evaluation.realism_run " + " ".join(args.argv),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "argv"},
        "pieces": {"generated": len(seqs), "real_emopia_test": len(real), "seed_samples": len(seed),
                   "skipped_real": skipped},
        "classifier": {"generated_vs_real": vars(sep), "gradient_boosted_generated_vs_real": vars(sep_gb),
                       "seed_samples_vs_real": vars(sep_seed),
                       "features": list(RL.REALISM_NAMES) + ["(+ the 46 note features of music_features.py)"],
                       "model": "standardised L2 logistic regression, stratified 5-fold, out-of-fold AUC"},
        "gaps": g,
        "single_feature_auc": RL.single_feature_auc(rR, gR),
        "seed_sample_gaps": RL.gaps(rR, sR),
        "density_by_quadrant": {"generated_by_asked_quadrant": dg, "real_emopia_test": dr},
        "aims": aims(sep, g, dg, dr),
        "seconds_generating": round(t_gen, 1),
    }
    if args.judge:
        res["emotion"] = judge(args, seqs, rel, valence, np.repeat(asked.reshape(-1, args.k)[:, 0], args.k))
    return res


def table(res: dict) -> str:
    """The figures as a Markdown table."""
    lines = [f"classifier AUC generated vs real: {res['classifier']['generated_vs_real']['auc']:.3f} "
             f"[{res['classifier']['generated_vs_real']['ci95'][0]:.3f}, {res['classifier']['generated_vs_real']['ci95'][1]:.3f}]; "
             f"seed samples vs real: {res['classifier']['seed_samples_vs_real']['auc']:.3f}; gradient-boosted "
             f"classifier: {res['classifier']['gradient_boosted_generated_vs_real']['auc']:.3f}", "",
             "| feature | real | generated | seed samples | this feature alone tells them apart (AUC) |",
             "|---|---:|---:|---:|---:|"]
    for k, v in res["gaps"].items():
        lines.append(f"| {k} | {v['real']:.3f} | {v['generated']:.3f} | {res['seed_sample_gaps'][k]['generated']:.3f} "
                     f"| {res['single_feature_auc'][k]:.2f} |")
    d = res["density_by_quadrant"]
    lines += ["", "| density (median notes/s) | " + " | ".join(d["real_emopia_test"]) + " |", "|---|" + "---:|" * 4,
              "| real EMOPIA test | " + " | ".join(f"{x:.2f}" for x in d["real_emopia_test"].values()) + " |",
              "| generated (asked quadrant) | " + " | ".join(f"{x:.2f}" for x in d["generated_by_asked_quadrant"].values()) + " |",
              "", "| aim | measured | met |", "|---|---:|---|"]
    for k, a in res["aims"].items():
        lines.append(f"| {k} ({a['aim']}) | {a['value']:+.3f} | {'yes' if a['met'] else 'no'} |")
    if "emotion" in res:
        e = res["emotion"]
        lines += ["", f"valence rank correlation (image rating vs judged music) {e['valence_rank_correlation']['value']:+.3f} "
                      f"{e['valence_rank_correlation']['ci95']}; judged valence = asked valence "
                      f"{e['valence_agreement_with_asked']:.3f}"]
        if "decoder_told_emotion" in e:
            t = e["decoder_told_emotion"]
            k = t["key_adherence"]
            lines.append(f"decoder told a corner: valence {t['valence_agreement']['value']:.3f} "
                         f"{t['valence_agreement']['ci95']}, arousal {t['arousal_agreement']['value']:.3f}; asked a key: "
                         f"mode {k['mode']['share_with_asked_mode']:.3f}, tonic {k['tonic']['share_with_asked_tonic']:.3f}")
    return "\n".join(lines)


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m installation.evaluation.realism_run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, default=REPO / "exported_models")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=None, help="write the figures here (JSON)")
    ap.add_argument("--decoder", default=None, choices=["gru", "transformer"])
    ap.add_argument("--guidance", type=float, default=None, help="control guidance weight (default: the manifest's)")
    ap.add_argument("--emotion-map", type=Path, default=None, help="an emotion map TOML (default: the models')")
    ap.add_argument("--k", type=int, default=1, help="pieces per image")
    ap.add_argument("--limit-images", type=int, default=None)
    ap.add_argument("--seconds", type=float, default=SECONDS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--no-legal", action="store_true", help="sample without masking impossible note events")
    ap.add_argument("--no-harmony", action="store_true",
                    help="no harmony plan: the chord control unset (default: the models' harmony.json, where present)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--judge", action="store_true", help="also the emotion judge's valence figures (minutes)")
    ap.add_argument("--told", type=int, default=0,
                    help="with --judge: also N pieces per quadrant told its corner, and N per mode asked a key")
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if not args.data.is_dir():
        ap.exit(2, f"error: --data {args.data}: not a folder; pass the shared data folder\n")
    return args


def main(argv=None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    res = run(args)
    print(table(res))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=2, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
