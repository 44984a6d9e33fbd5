"""The evaluation run: train the judges on real data, generate for held-out images, score, report."""
from __future__ import annotations

import csv
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from installation import manifest as M
from installation.evaluation import classifiers as CL
from installation.evaluation import datasets as DS
from installation.evaluation import metrics as MET
from installation.evaluation import plots, report
from installation.evaluation import quality as QUAL
from installation.image.capture import bundled_artworks
from installation.image.emotion import ImageEmotion
from installation.image.encoder import ImageEncoder
from installation.image.preprocess import load_rgb
from installation.measures import adherence, music_features as MF
from installation.mood import emotion_map
from installation.mood.conductor import Steering
from installation.music import events as E
from installation.music.decoder import open_decoder
from installation.music.render import RenderSettings, directions, generate, harmony_plans
from installation.training.data import load_emotion6

log = logging.getLogger("installation.evaluation")

QNAMES = ("Q1 happy", "Q2 tense", "Q3 sad", "Q4 calm")


# --- scoring one set of image-music pairs -------------------------------------------------

@dataclass
class Pairs:
    """Images (n,) and the music judged for each, (n, K) per piece."""
    img_q: np.ndarray
    img_valence: np.ndarray          # continuous 1..9
    img_v: np.ndarray                # 0/1
    img_a: np.ndarray                # 0/1
    mus_q: np.ndarray                # (n, K) predicted quadrant, -1 = not classifiable
    mus_v: np.ndarray                # (n, K) 0/1 (-1: not classifiable)
    mus_a: np.ndarray
    mus_pv: np.ndarray               # (n, K) P(positive valence)
    match: np.ndarray | None = None  # (n, K) P(match) with the own image
    match_fn: object = None          # perm -> (n, K) P(match) with image i and music of perm[i]


def score(p: Pairs, *, resamples: int = 2000, permutations: int = 500, seed: int = 0) -> dict:
    """Every emotion figure with a bootstrap interval over images, a chance baseline and the shuffled control."""
    n = len(p.img_q)
    out = {}
    for name, img, mus, classes in (("quadrant", p.img_q, p.mus_q, range(4)), ("valence", p.img_v, p.mus_v, (0, 1)),
                                    ("arousal", p.img_a, p.mus_a, (0, 1))):
        est, lo, hi = MET.bootstrap_ci(lambda idx: MET.agreement(img[idx], mus[idx]), n, resamples=resamples, seed=seed)
        sh = MET.shuffled(lambda perm: MET.agreement(img, mus[perm]), n, permutations=permutations, seed=seed + 1)
        out[f"{name}_agreement"] = {"value": est, "ci95": [lo, hi],
                                    "chance": MET.chance_agreement(img, mus[mus >= 0], classes),
                                    "shuffled": sh[0], "shuffled_range95": [sh[1], sh[2]],
                                    "p_vs_shuffled": MET.permutation_p(est, lambda perm: MET.agreement(img, mus[perm]), n,
                                                                       permutations=permutations, seed=seed + 2)}
    mv = p.mus_pv.mean(1)
    est, lo, hi = MET.bootstrap_ci(lambda idx: MET.spearman(p.img_valence[idx], mv[idx]), n, resamples=resamples, seed=seed)
    sh = MET.shuffled(lambda perm: MET.spearman(p.img_valence, mv[perm]), n, permutations=permutations, seed=seed + 1)
    out["valence_rank_correlation"] = {
        "value": est, "ci95": [lo, hi], "chance": 0.0, "shuffled": sh[0], "shuffled_range95": [sh[1], sh[2]],
        "p_vs_shuffled": MET.permutation_p(est, lambda perm: MET.spearman(p.img_valence, mv[perm]), n,
                                           permutations=permutations, seed=seed + 2),
        "per_piece": MET.spearman(np.repeat(p.img_valence, p.mus_pv.shape[1]), p.mus_pv.ravel())}
    if p.match is not None:
        judged = p.match > 0.5
        est, lo, hi = MET.bootstrap_ci(lambda idx: float(judged[idx].mean()), n, resamples=resamples, seed=seed)
        perms = np.random.default_rng(seed + 1)
        shuf = np.array([float((p.match_fn(perms.permutation(n)) > 0.5).mean()) for _ in range(min(permutations, 200))])
        out["judged_matching"] = {"value": est, "ci95": [lo, hi], "chance": float("nan"), "shuffled": float(shuf.mean()),
                                  "shuffled_range95": [float(np.quantile(shuf, 0.025)), float(np.quantile(shuf, 0.975))],
                                  "mean_match_probability": float(p.match.mean())}
    return out


def _predictions(clf: CL.MusicEmotionClassifier, X: np.ndarray, ok: np.ndarray, shape) -> dict[str, np.ndarray]:
    """Classifier outputs for rows ``ok`` of X; rows that could not be described get -1 / 0.5 / uniform."""
    q = np.full(len(X), -1)
    v = np.full(len(X), -1)
    a = np.full(len(X), -1)
    pv = np.full(len(X), 0.5)
    pa = np.full(len(X), 0.5)
    pq = np.full((len(X), 4), 0.25)
    if ok.any():
        prob = clf.predict_proba(X[ok])
        pq[ok] = prob["quadrant"]
        q[ok] = prob["quadrant"].argmax(1)
        v[ok] = prob["valence"] > 0.5
        a[ok] = prob["arousal"] > 0.5
        pv[ok] = prob["valence"]
        pa[ok] = prob["arousal"]
    return {"q": q.reshape(shape), "v": v.reshape(shape), "a": a.reshape(shape), "pv": pv.reshape(shape),
            "pa": pa.reshape(shape), "pq": pq.reshape(*shape, 4)}


def make_pairs(held: DS.HeldOutImages, pred: dict, corr: CL.CorrespondenceClassifier | None = None) -> Pairs:
    p = Pairs(held.quadrant, held.valence, held.valence_positive.astype(int), held.arousal_high.astype(int),
              pred["q"], pred["v"], pred["a"], pred["pv"])
    if corr is not None:
        p_img = corr.image_quadrant_proba(held.embedding)                       # (n, 4)
        pq = pred["pq"]                                                          # (n, K, 4)
        n, K = pq.shape[:2]

        def match_fn(perm):
            pi = np.repeat(p_img, K, axis=0)
            pm = pq[perm].reshape(n * K, 4)
            return corr.pair.predict_proba(CL.pair_features(pi, pm))[:, 1].reshape(n, K)

        p.match, p.match_fn = match_fn(np.arange(n)), match_fn
    return p


def decoder_told(man, dec, clf, settings, emap, n: int, seconds: float, resamples: int, seed: int,
                 harmony: bool = True) -> dict:
    """The decoder alone: ``n`` pieces per quadrant made when told that corner's valence and arousal
    (``--valence/--arousal`` overrides, through the conductor, no image), judged like the rest; ``harmony``: the
    models' harmony plan asks the chords, as live."""
    from dataclasses import replace

    q = np.repeat(np.arange(4), n)
    corner = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], np.float32)[q]
    keys = [f"told-Q{int(x) + 1}#{i % n}" for i, x in enumerate(q)]
    ds = [directions(np.zeros((1, 2), np.float32), [k], Steering(valence=float(v), arousal=float(a)), emap,
                     man.key_templates, seed + 11)[0] for k, (v, a) in zip(keys, corner)]
    seqs = generate(dec, np.stack([d.controls for d in ds]), keys, replace(settings, seed=seed + 11),
                    harmony_plans(man.folder, ds, keys, seed + 11) if harmony else None)
    X, ok, _, _ = generated_features(seqs, seconds)
    pred = _predictions(clf, X, ok, (len(q), 1))
    out = {"pieces_per_quadrant": n, "told": "valence and arousal +-1 (the corners of the square)"}
    for name, want, got in (("quadrant", q, pred["q"][:, 0]), ("valence", CL.targets_of(q)["valence"], pred["v"][:, 0]),
                            ("arousal", CL.targets_of(q)["arousal"], pred["a"][:, 0])):
        est, lo, hi = MET.bootstrap_ci(lambda idx: MET.agreement(want[idx], got[idx]), len(q), resamples=resamples, seed=seed)
        out[f"{name}_agreement"] = {"value": est, "ci95": [lo, hi]}
    out["by_quadrant"] = {f"Q{k + 1}": {name: float(np.nanmean(X[q == k, MF.column(name)]))
                                        for name in ("note_density", "velocity_mean", "key_mode")} for k in range(4)}
    out["judged_quadrant_counts"] = {f"Q{k + 1}": np.bincount(pred["q"][q == k, 0][pred["q"][q == k, 0] >= 0],
                                                              minlength=4).tolist() for k in range(4)}
    return out


def image_side(va: np.ndarray, valence: np.ndarray, arousal: np.ndarray, arousal_split: float, resamples: int,
               permutations: int, seed: int) -> dict:
    """The picture read as numbers: Spearman of predicted vs rated valence and arousal, and sign agreement."""
    n = len(va)
    out = {"images": int(n)}
    for k, (name, rated, split) in enumerate((("valence", valence, 5.0), ("arousal", arousal, arousal_split))):
        pred = va[:, k]
        est, lo, hi = MET.bootstrap_ci(lambda idx: MET.spearman(rated[idx], pred[idx]), n, resamples=resamples, seed=seed)
        sh = MET.shuffled(lambda perm: MET.spearman(rated, pred[perm]), n, permutations=permutations, seed=seed + 1)
        keep = rated != split
        sign = float(np.mean((pred[keep] > 0) == (rated[keep] > split)))
        out[name] = {"spearman": est, "ci95": [lo, hi], "shuffled": sh[0], "shuffled_range95": [sh[1], sh[2]],
                     "sign_agreement": sign, "mean_prediction": float(pred.mean()), "sd_prediction": float(pred.std())}
    return out


def artworks_figure(man, encoder, feel, dec, emap, settings, path: Path) -> None:
    """The bundled public-domain artworks beside the music the shipped chain makes for them (safe to publish)."""
    files = sorted(bundled_artworks().glob("*.jpg"))
    frames = [load_rgb(p) for p in files]
    emb, va = feel.read(encoder, frames)
    keys = [p.stem for p in files]
    ds = directions(va, keys, Steering(), emap, man.key_templates, settings.seed)
    seqs = generate(dec, np.stack([d.controls for d in ds]), keys, settings, harmony_plans(man.folder, ds, keys, settings.seed))
    rows = [(img, E.events_to_notes(s), f"{p.stem}: {d.describe()}", plots.QCOLORS[
        {(True, True): 0, (False, True): 1, (False, False): 2, (True, False): 3}[(d.valence >= 0, d.arousal >= 0)]])
        for p, img, s, d in zip(files, frames, seqs, ds)]
    plots.picture_rows(rows, path, settings.seconds, "The bundled artworks and the music the shipped models make for them")


# --- the run ------------------------------------------------------------------------------

def _bootstrap_accuracy(correct: np.ndarray, groups: np.ndarray, resamples: int, seed: int) -> list[float]:
    """95% interval of a window-level accuracy, resampling pieces (a piece's windows together)."""
    ug = np.unique(groups)
    members = [np.flatnonzero(groups == g) for g in ug]

    def stat(idx):
        rows = np.concatenate([members[i] for i in idx])
        return float(correct[rows].mean())
    _, lo, hi = MET.bootstrap_ci(stat, len(ug), resamples=resamples, seed=seed)
    return [lo, hi]


def generated_features(seqs: list[np.ndarray], seconds: float):
    """Events -> (X with NaN rows for pieces too sparse to describe, ok mask, raws, notes per piece)."""
    X = np.full((len(seqs), len(MF.FEATURE_NAMES)), np.nan)
    ok = np.zeros(len(seqs), bool)
    raws, counts = [], []
    for i, s in enumerate(seqs):
        notes = MF.clip(E.events_to_notes(s), seconds)
        counts.append(len(notes))
        d = MF.describe(notes, seconds)
        if d is not None:
            X[i], ok[i] = d[0], True
            raws.append(d[1])
    return X, ok, raws, np.array(counts)


def run(args) -> dict:
    t_start = time.time()
    timings = {}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    man = M.load(args.models)
    enc_sha = man.io("encoder").get("sha256")
    encoder = ImageEncoder(man, threads=args.threads)
    caches = () if args.no_cache else (DS.FEATURE_CACHE,)
    event_cache = None if args.no_cache else DS.EVENT_CACHE

    # 1. data
    t = time.time()
    images = load_emotion6(Path(args.data))
    feats, feat_source = DS.image_features(args.data, images, encoder, enc_sha, caches=caches)
    held = DS.held_out_images(images, feats, args.limit_images)
    log.info("held-out images with a quadrant: %d (image features: %s)", len(held.rel), feat_source)
    feel = ImageEmotion(man, threads=args.threads)
    every = np.flatnonzero(images.test)                               # the image side: every held-out image
    if args.limit_images is not None:
        every = every[np.linspace(0, len(every) - 1, min(args.limit_images, len(every))).round().astype(int)]
    every = np.union1d(every, [images.rel.index(r) for r in held.rel])
    va_all = np.concatenate([feel.read(encoder, [load_rgb(Path(args.data) / images.rel[i]) for i in every[j:j + 16]])[1]
                             for j in range(0, len(every), 16)])        # as the runtime reads a picture
    row_of = {images.rel[i]: j for j, i in enumerate(every)}
    held_va = np.stack([va_all[row_of[r]] for r in held.rel])
    mw = DS.load_music(args.data, event_cache=event_cache)
    if mw.skipped:
        log.warning("music files skipped: %s", ", ".join(mw.skipped))
    timings["data_s"] = time.time() - t

    # 2. the judges, on real data only
    t = time.time()
    tr = np.concatenate([mw.rows(source="emopia", split="train"), mw.rows(source="vgmidi_labelled")])
    va, te = mw.rows(source="emopia", split="val"), mw.rows(source="emopia", split="test")
    clf = CL.MusicEmotionClassifier().fit(mw.X[tr], mw.quadrant[tr], mw.X[va], mw.quadrant[va])
    nodyn = CL.MusicEmotionClassifier(exclude=MF.DYNAMICS).fit(mw.X[tr], mw.quadrant[tr], mw.X[va], mw.quadrant[va])
    ys_tr, ys_te = CL.targets_of(mw.quadrant[tr]), CL.targets_of(mw.quadrant[te])
    pred_te, pred_te_nd = clf.predict(mw.X[te]), nodyn.predict(mw.X[te])
    music_clf = {}
    for tname in CL.TARGETS:
        correct = pred_te[tname] == ys_te[tname]
        music_clf[tname] = {"test_accuracy": float(correct.mean()),
                            "ci95": _bootstrap_accuracy(correct, mw.piece[te], args.bootstrap, args.seed),
                            "majority_baseline": MET.majority_baseline(ys_tr[tname], ys_te[tname]),
                            "val_accuracy": clf.fitted[tname].val_accuracy, "C": clf.fitted[tname].C,
                            "without_dynamics_test_accuracy": float(np.mean(pred_te_nd[tname] == ys_te[tname]))}
    music_clf["windows"] = {"train": int(len(tr)), "val": int(len(va)), "test": int(len(te)),
                            "test_pieces": int(len(np.unique(mw.piece[te])))}
    emb_tr, q_tr, groups_img = DS.training_images(images, feats)
    corr = CL.CorrespondenceClassifier(seed=args.seed).fit(emb_tr, q_tr, groups_img, clf, mw.X[tr], mw.quadrant[tr],
                                                           mw.piece[tr])
    corr_info = {"validation_accuracy": corr.validate(held.embedding, held.quadrant, mw.X[te], mw.quadrant[te],
                                                      seed=args.seed + 1),
                 "validation": "balanced pairs of held-out images x EMOPIA test windows (4000 pairs)",
                 "chance": 0.5, "image_branch_cv_quadrant_accuracy": corr.image_cv_accuracy,
                 "training_images": int(len(np.unique(groups_img))), "training_views": int(len(q_tr))}
    probe_q = corr.image_quadrant_proba(held.embedding).argmax(1)
    corr_info["image_branch_held_out"] = {
        "quadrant": float(np.mean(probe_q == held.quadrant)),
        "valence": float(np.mean(CL.targets_of(probe_q)["valence"] == held.valence_positive)),
        "arousal": float(np.mean(CL.targets_of(probe_q)["arousal"] == held.arousal_high))}
    timings["classifiers_s"] = time.time() - t

    # 3. generate K pieces per held-out image through the shipped ONNX models
    t = time.time()
    K = args.k
    dec = open_decoder(man, kind=getattr(args, "decoder", None), threads=args.threads,
                       guidance=getattr(args, "guidance", None))
    emap = emotion_map.for_models(man.folder)
    keys = [f"{rel}#{k}" for rel in held.rel for k in range(K)]
    settings = RenderSettings(seconds=args.seconds, seed=args.seed, temperature=args.temperature, top_p=args.top_p,
                              batch=args.batch)
    ds = directions(np.repeat(held_va, K, axis=0), keys, Steering(), emap, man.key_templates, args.seed)
    seqs = generate(dec, np.stack([d.controls for d in ds]), keys, settings, harmony_plans(man.folder, ds, keys, args.seed))
    timings["generate_s"] = time.time() - t
    log.info("generated %d pieces in %.0f s", len(seqs), timings["generate_s"])
    side = image_side(va_all, images.valence[every], images.arousal[every], images.arousal_split, args.bootstrap,
                      args.permutations, args.seed)
    cond_q = np.where(held_va[:, 0] >= 0, np.where(held_va[:, 1] >= 0, 0, 3), np.where(held_va[:, 1] >= 0, 1, 2))
    side["quadrant_of_held_out_with_a_quadrant"] = {
        "quadrant": float(np.mean(cond_q == held.quadrant)),
        "valence": float(np.mean((held_va[:, 0] >= 0) == held.valence_positive)),
        "arousal": float(np.mean((held_va[:, 1] >= 0) == held.arousal_high)),
        "predicted_share": np.bincount(cond_q, minlength=4).tolist()}
    gX, gok, graw, gcount = generated_features(seqs, args.seconds)
    if args.save_midi:
        mdir = out / "midi"
        mdir.mkdir(exist_ok=True)
        for key, s in zip(keys, seqs):
            E.events_to_midi(s, mdir / (key.replace("images/emotion6/images/", "").replace("/", "_").replace("#", "_k") + ".mid"))

    # 4. score: generated music, the shuffled control (inside score), and two real-music references
    t = time.time()
    shape = (len(held.rel), K)
    pred = _predictions(clf, gX, gok, shape)
    gen = make_pairs(held, pred, corr)
    results = {"generated": score(gen, resamples=args.bootstrap, permutations=args.permutations, seed=args.seed)}
    nd = make_pairs(held, _predictions(nodyn, gX, gok, shape))
    results["generated_judged_without_dynamics"] = {
        k: v for k, v in score(nd, resamples=200, permutations=100, seed=args.seed).items()}
    rng = np.random.default_rng(args.seed + 7)
    test_q = mw.quadrant[te]
    refs = [("real_music_true_quadrant", held.quadrant), ("real_music_image_side_quadrant", cond_q),
            ("real_music_probe_quadrant", probe_q)]
    for name, want in refs:
        rows = np.array([[rng.choice(te[test_q == q]) for _ in range(K)] for q in want])
        Xr = mw.X[rows.ravel()]
        results[name] = score(make_pairs(held, _predictions(clf, Xr, np.ones(len(Xr), bool), shape), corr),
                              resamples=args.bootstrap, permutations=args.permutations, seed=args.seed)
    results["decoder_told_emotion"] = decoder_told(man, dec, clf, settings, emap, args.told_pieces, args.seconds,
                                                   args.bootstrap, args.seed)
    t_ad = time.time()
    results["adherence"] = adherence.measure(dec, man.key_templates, settings, n=args.adherence_pieces)
    timings["adherence_s"] = time.time() - t_ad
    confusion = np.zeros((4, 5), int)                                   # last column: not classifiable
    for i, q in enumerate(held.quadrant):
        for k in range(K):
            confusion[q, pred["q"][i, k] if pred["q"][i, k] >= 0 else 4] += 1

    # 5. musical quality against held-out real music
    real_te = mw.subset(te)
    ref = mw.subset(mw.rows(source="emopia", split="train"))
    if gok.sum() < 2:
        raise RuntimeError(f"only {int(gok.sum())} of {len(seqs)} generated pieces have {MF.MIN_NOTES}+ notes in "
                           f"{args.seconds:.0f} s: nothing to evaluate (are these models trained?)")
    qual = QUAL.compare(gX[gok], graw, real_te.X, real_te.raw, ref.X, ref.raw)
    img_q_pieces = np.repeat(held.quadrant, K)
    emopia_all = mw.subset(np.concatenate([mw.rows(source="emopia", split=s) for s in ("train", "val", "test")]))
    per_q = {"generated_by_image_quadrant": QUAL.per_quadrant(gX[gok], img_q_pieces[gok]),
             "real_emopia_by_label": QUAL.per_quadrant(emopia_all.X, emopia_all.quadrant)}
    img_of_piece = np.repeat(np.arange(len(held.rel)), K)
    ev_y = CL.targets_of(emopia_all.quadrant)
    per_q["gaps"] = {
        "valence": {"generated": QUAL.gaps(gX, np.repeat(held.valence_positive, K), img_of_piece, seed=args.seed),
                    "real_emopia": QUAL.gaps(emopia_all.X, ev_y["valence"].astype(bool), emopia_all.piece, seed=args.seed)},
        "arousal": {"generated": QUAL.gaps(gX, np.repeat(held.arousal_high, K), img_of_piece, seed=args.seed),
                    "real_emopia": QUAL.gaps(emopia_all.X, ev_y["arousal"].astype(bool), emopia_all.piece, seed=args.seed)}}
    icc = {"p_valence_positive": MET.icc1(pred["pv"]), "p_arousal_high": MET.icc1(pred["pa"])}
    for label, name in (("mean velocity", "velocity_mean"), ("note density", "note_density"), ("major-minor r", "key_mode")):
        v = gX[:, MF.column(name)].reshape(shape)
        icc[label] = MET.icc1(v) if np.isfinite(v).all() else float("nan")
    timings["scoring_s"] = time.time() - t
    timings["total_s"] = time.time() - t_start

    res = {
        "models": {"folder": str(Path(args.models).resolve()), "git_commit": man.data.get("git_commit"),
                   "sha256": {k: man.io(k).get("sha256") for k in M.MODELS}, "model_config": man.model_config,
                   "decoder": dec.kind},
        "settings": {"k": K, "seconds": args.seconds, "seed": args.seed, "temperature": args.temperature,
                     "top_p": args.top_p, "bootstrap": args.bootstrap, "permutations": args.permutations,
                     "images": len(held.rel), "pieces": len(seqs), "limit_images": args.limit_images,
                     "image_features": feat_source,
                     "arousal_split": held.arousal_split},
        "images_per_quadrant": np.bincount(held.quadrant, minlength=4).tolist(),
        "music_classifier": music_clf,
        "correspondence_classifier": corr_info,
        "image_side_on_held_out": side,
        "decoder": dec.kind,
        "emotion": results,
        "confusion": confusion.tolist(),
        "unclassifiable_pieces": int((~gok).sum()),
        "notes_per_piece": {"median": float(np.median(gcount)), "min": int(gcount.min()), "max": int(gcount.max())},
        "quality": qual,
        "per_quadrant": per_q,
        "image_dependence_icc": icc if K > 1 else {},
        "timings": timings,
    }
    (out / "metrics.json").write_text(json.dumps(res, indent=2, default=_json))
    with open(out / "pieces.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "k", "image_valence", "image_arousal", "image_quadrant", "music_quadrant", "p_valence_positive",
                    "p_arousal_high", "p_match", "notes", "events"])
        for i, rel in enumerate(held.rel):
            for k in range(K):
                j = i * K + k
                w.writerow([rel, k, f"{held.valence[i]:.2f}", f"{held.arousal[i]:.2f}", f"Q{held.quadrant[i] + 1}",
                            f"Q{pred['q'][i, k] + 1}" if pred["q"][i, k] >= 0 else "-", f"{pred['pv'][i, k]:.3f}",
                            f"{pred['a'][i, k]}", f"{gen.match[i, k]:.3f}", gcount[j], len(seqs[j])])
    plots.pictures_for_people(Path(args.data), held, held_va, seqs, K, args.seconds, out, per_quadrant=3,
                              asked=[d.targets.describe() for d in ds[::K]])
    artworks_figure(man, encoder, feel, dec, emap, settings, out / "pictures_artworks.png")
    plots.confusion(confusion, out / "confusion.png")
    plots.valence_scatter(held.valence, pred["pv"], held.quadrant, results["generated"]["valence_rank_correlation"],
                          out / "valence_scatter.png")
    plots.quality(gX[gok], graw, real_te.X, real_te.raw, out / "quality.png", qual)
    report.write(res, out / "report.md", command=getattr(args, "command_line", None))
    log.info("report written to %s (%.0f s)", out, timings["total_s"])
    return res


def _json(o):
    """numpy scalars and arrays as plain numbers and lists (for json.dumps)."""
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(type(o))
