"""report.md: the run's figures in readable form (metrics.json holds them all)."""
from __future__ import annotations

from pathlib import Path

from installation.measures.music_features import FEATURE_NAMES

AIMS = {"valence_agreement": 0.68, "valence_rank_correlation": 0.45, "arousal_agreement": 0.60}
TOLD_AIMS = {"valence_agreement": 0.85, "arousal_agreement": 0.85}
IMAGE_AIMS = {"valence": 0.6, "arousal": 0.3}
# the overlaps of the models shipped before the controls (EVALUATION.md, export f8ab86d): "no loss in quality"
PREVIOUS_OVERLAP = {"pitch-class histogram (key-relative)": 0.94, "note density (notes/s)": 0.73,
                    "polyphony (mean sounding notes)": 0.58, "velocity per note": 0.74, "log IOI per onset": 0.63,
                    "register (mean pitch)": 0.79}
ROWS = (("quadrant_agreement", "quadrant agreement", True), ("valence_agreement", "valence agreement", True),
        ("arousal_agreement", "arousal agreement", True), ("valence_rank_correlation", "valence rank correlation (Spearman)", False),
        ("judged_matching", "judged matching by the correspondence classifier", True))


def _f(x, pct: bool) -> str:
    if x is None or x != x:
        return "-"
    return f"{x:.1%}" if pct else f"{x:+.2f}"


def _ci(r, pct):
    lo, hi = r["ci95"]
    return f"[{_f(lo, pct)}, {_f(hi, pct)}]"


def _aim_line(label: str, v: float, aim: float, pct: bool, ci=None) -> str:
    ci_s = f" (95% CI [{_f(ci[0], pct)}, {_f(ci[1], pct)}])" if ci else ""
    if v >= aim:
        return f"- {label}: **{_f(v, pct)}**, aim {_f(aim, pct)}: met{ci_s}."
    gap = (aim - v) * (100 if pct else 1)
    unit = " percentage points" if pct else ""
    return f"- {label}: **{_f(v, pct)}**, aim {_f(aim, pct)}: **short by {gap:.2f}{unit}**{ci_s}."


def aims(res: dict) -> list[str]:
    em = res["emotion"]
    g = em["generated"]
    out = ["The decoder alone, told a valence and an arousal through the overrides:"]
    told = em.get("decoder_told_emotion")
    if told:
        for key, aim in TOLD_AIMS.items():
            out.append(_aim_line(f"judged {key.split('_')[0]} right", told[key]["value"], aim, True, told[key]["ci95"]))
    side = res.get("image_side_on_held_out")
    if side:
        out += ["", f"The image side on {side['images']} held-out Emotion6 images:"]
        for key, aim in IMAGE_AIMS.items():
            r = side[key]
            out.append(_aim_line(f"{key} Spearman", r["spearman"], aim, False, r["ci95"]))
    out += ["", "The whole chain on held-out images:"]
    for key, aim in AIMS.items():
        r = g[key]
        out.append(_aim_line(key.replace("_", " "), r["value"], aim, key.endswith("agreement"), r["ci95"]))
    ad = em.get("adherence")
    if ad:
        out += ["", "Adherence to the controls:",
                _aim_line("asked major or minor: pieces with that mode", ad["mode"]["share_with_asked_mode"], 0.9, True),
                _aim_line("asked a tonic: pieces with that tonic", ad["tonic"]["share_with_asked_tonic"], 0.7, True),
                "- asked a density: median piece within 25%: " + ", ".join(
                    f"{k} notes/s -> {v['median']} ({'met' if v['within_25pct'] else '**missed**'})"
                    for k, v in ad["density"]["targets"].items()) + ".",
                "- asked a loudness: median piece within 8 velocity steps: " + ", ".join(
                    f"{k} -> {v['median']} ({'met' if v['within_8'] else '**missed**'})"
                    for k, v in ad["loudness"]["targets"].items()) + "."]
    q = {r["feature"]: r["overlap"] for r in res.get("quality", [])}
    if q:
        worse = [f"{k} {q[k]:.2f} < {v:.2f}" for k, v in PREVIOUS_OVERLAP.items() if k in q and q[k] < v - 1e-9]
        out += ["", "No loss in musical quality (overlap with real music at least the previous models' on every "
                "feature): " + ("met." if not worse else "**missed** on " + "; ".join(worse) + ".")]
    return out


def write(res: dict, path: Path, command: str | None = None) -> None:
    s = res["settings"]
    em = res["emotion"]
    g = em["generated"]
    mc = res["music_classifier"]
    cc = res["correspondence_classifier"]
    side = res.get("image_side_on_held_out", {})
    L = ["# Machine evaluation: does the music carry the image's emotion?", ""]
    L += [f"Models: `{res['models']['folder']}` (export commit `{res['models']['git_commit']}`; sha256 "
          + ", ".join(f"{k} `{v[:12]}`" for k, v in res["models"]["sha256"].items()) + ").",
          f"Held-out Emotion6 images with a quadrant: {s['images']} (Q1-Q4: {res['images_per_quadrant']}), "
          f"{s['k']} pieces of {s['seconds']:.0f} s each = {s['pieces']} pieces (seed {s['seed']}, temperature "
          f"{s['temperature']}, top-p {s['top_p']}). Image features: {s['image_features']}.",
          f"Intervals: 95% bootstrap over images ({s['bootstrap']} resamples); shuffled control: the same figure with the "
          f"image-to-music assignment permuted ({s['permutations']} permutations; mean and central 95%).", ""]
    if command:
        L += ["Command:", "", "```", command, "```", ""]
    L += ["## Aims", ""] + aims(res) + [""]
    L += ["## Emotion correspondence", "",
          "| figure | generated | 95% CI | chance | shuffled pairs (control) | p vs shuffled |",
          "|---|---|---|---|---|---|"]
    for key, label, pct in ROWS:
        if key not in g:
            continue
        r = g[key]
        sh = f"{_f(r['shuffled'], pct)} [{_f(r['shuffled_range95'][0], pct)}, {_f(r['shuffled_range95'][1], pct)}]"
        pv = f"{r['p_vs_shuffled']:.3f}" if "p_vs_shuffled" in r else "-"
        L.append(f"| {label} | **{_f(r['value'], pct)}** | {_ci(r, pct)} | {_f(r['chance'], pct)} | {sh} | {pv} |")
    rc = g["valence_rank_correlation"]
    L += ["",
          "Agreement: the image's Emotion6 label (valence > 5; arousal above the median "
          f"{s['arousal_split']:.2f}) against the music classifier's label for each generated piece. Chance: "
          "the agreement two independent labelings with the same marginal frequencies would reach. "
          "Rank correlation: Emotion6 valence against the mean over an image's pieces of the classifier's "
          f"P(positive valence) (per piece: {rc['per_piece']:+.2f}). p: the share of shuffled pairings scoring at least "
          "as well (one-sided).", "",
          "References, not models: the same judges scoring *real* EMOPIA test windows in place of generated music "
          f"({s['k']} per image), drawn from a quadrant chosen three ways. The image's true quadrant: what a perfect "
          "emotion-to-music generator could score with these judges (the measurement ceiling). The quadrant of the "
          "valence/arousal the image side reads: what a perfect decoder behind this image side could score. The quadrant a "
          "linear probe reads from the frozen embedding: what the image features reveal.", "",
          "| figure | real music, true quadrant | real music, image side's quadrant | real music, probe's quadrant |",
          "|---|---|---|---|"]
    for key, label, pct in ROWS:
        if key not in g:
            continue
        cells = []
        for n in ("real_music_true_quadrant", "real_music_image_side_quadrant", "real_music_probe_quadrant"):
            ok = n in em and key in em[n] and not (key == "judged_matching" and n != "real_music_true_quadrant")
            cells.append(f"{_f(em[n][key]['value'], pct)} {_ci(em[n][key], pct)}" if ok else "-")
        L.append(f"| {label} | " + " | ".join(cells) + " |")
    L += ["", "(Judged matching is left out for the probe and image-side columns: the correspondence classifier's own image "
          "branch is such a probe, so music picked by a probe agrees with it by construction.)", "",
          "![confusion](confusion.png)", "", "![valence](valence_scatter.png)", ""]
    told = em.get("decoder_told_emotion")
    if told:
        L += ["## The decoder alone", "",
              f"Told each corner's valence and arousal (+-1) through the overrides, no image, {told['pieces_per_quadrant']} "
              "pieces per quadrant, judged by the same classifier: what the music half of the chain delivers when the "
              "image half is perfect.", "",
              "| figure | decoder told the emotion | 95% CI |", "|---|---|---|"]
        for key, label in (("quadrant_agreement", "quadrant agreement"), ("valence_agreement", "valence agreement"),
                           ("arousal_agreement", "arousal agreement")):
            r = told[key]
            L.append(f"| {label} | **{_f(r['value'], True)}** | {_ci(r, True)} |")
        L += ["", "| told | note density | mean velocity | major-minor r | judged as Q1 / Q2 / Q3 / Q4 |", "|---|---|---|---|---|"]
        for q, v in told["by_quadrant"].items():
            L.append(f"| {q} | {v['note_density']:.2f} | {v['velocity_mean']:.1f} | {v['key_mode']:+.3f} | "
                     + " / ".join(str(c) for c in told["judged_quadrant_counts"][q]) + " |")
        L.append("")
    ad = em.get("adherence")
    if ad:
        L += ["## Adherence: does it play what it is asked?", "",
              f"One control group at a time, the others unset; {ad['pieces_seconds']:.0f} s pieces; key by "
              "Krumhansl-Schmuckler on the sounding notes.", "",
              f"- mode: {_f(ad['mode']['share_with_asked_mode'], True)} of {ad['mode']['pieces']} pieces have the asked mode "
              f"(asked major {_f(ad['mode']['asked_major'], True)}, asked minor {_f(ad['mode']['asked_minor'], True)}); aim 90%.",
              f"- tonic: {_f(ad['tonic']['share_with_asked_tonic'], True)} have the asked tonic "
              f"({_f(ad['tonic']['share_with_asked_key'], True)} the exact key); aim 70%.", "",
              "| asked | median piece | off by | aim |", "|---|---|---|---|"]
        for k, v in ad["density"]["targets"].items():
            L.append(f"| {k} notes/s | {v['median']} notes/s | {100 * v['relative_error']:.0f}% | within 25% |")
        for k, v in ad["loudness"]["targets"].items():
            L.append(f"| velocity {k} | {v['median']} | {v['error']} | within 8 |")
        L.append("")
    if side:
        L += ["## The image side", "",
              f"Valence and arousal read from {side['images']} held-out Emotion6 images, against their ratings:", "",
              "| | Spearman | 95% CI | shuffled | sign agreement (split: V 5, A median) |", "|---|---|---|---|---|"]
        for k in ("valence", "arousal"):
            r = side[k]
            L.append(f"| {k} | **{r['spearman']:+.2f}** | [{r['ci95'][0]:+.2f}, {r['ci95'][1]:+.2f}] | "
                     f"{r['shuffled']:+.2f} | {r['sign_agreement']:.1%} |")
        qh = side["quadrant_of_held_out_with_a_quadrant"]
        L += ["", f"As quadrants (images with one): quadrant {qh['quadrant']:.1%}, valence {qh['valence']:.1%}, "
              f"arousal {qh['arousal']:.1%}; predicted Q1-Q4 counts {qh['predicted_share']}.", ""]
    L += ["## Pictures for people", "", "For each quadrant, held-out images beside the piano roll of the first piece made for "
          "each (in this folder only: Emotion6 images may not be redistributed).", ""]
    L += [f"![Q{q}](pictures_Q{q}.png)" for q in range(1, 5)] + [""]
    icc = res.get("image_dependence_icc") or {}
    if icc:
        L += ["Does the music depend on the image at all? Intra-class correlation of the K pieces made for one image "
              "(ICC(1): 1 = the image decides the feature, about 0 = pieces for one image vary as much as pieces for "
              "different images): " + ", ".join(f"{k.replace('_', ' ')} {v:+.2f}" for k, v in icc.items()) + ".", ""]
    if res["unclassifiable_pieces"]:
        L += [f"{res['unclassifiable_pieces']} generated pieces had fewer than 8 notes and could not be classified; "
              "they count as disagreeing.", ""]
    L += ["## The judges (trained on real music and images only, never on generated music)", "",
          f"Music-emotion classifier: logistic regression on {len(FEATURE_NAMES)} "
          f"note features of 30 s windows; trained on EMOPIA train + VGMIDI labelled ({mc['windows']['train']} windows), "
          f"C chosen on EMOPIA val ({mc['windows']['val']} windows), tested on EMOPIA test ({mc['windows']['test']} windows "
          f"of {mc['windows']['test_pieces']} clips; intervals resample clips).", "",
          "| target | EMOPIA test accuracy | 95% CI | majority baseline | val accuracy | without velocity features (test) |",
          "|---|---|---|---|---|---|"]
    for t in ("valence", "arousal", "quadrant"):
        r = mc[t]
        L.append(f"| {t} | **{r['test_accuracy']:.1%}** | [{r['ci95'][0]:.1%}, {r['ci95'][1]:.1%}] | "
                 f"{r['majority_baseline']:.1%} | {r['val_accuracy']:.1%} | {r['without_dynamics_test_accuracy']:.1%} |")
    hb = cc["image_branch_held_out"]
    qh = side.get("quadrant_of_held_out_with_a_quadrant", {})
    L += ["",
          f"Correspondence classifier (image embedding + music features -> same quadrant or not): validation accuracy "
          f"**{cc['validation_accuracy']:.1%}** on {cc['validation']} (chance 50%; the paper reports about 60%). Trained on "
          f"{cc['training_images']} Emotion6 training images ({cc['training_views']} views) x EMOPIA train + VGMIDI windows.",
          "",
          "What the image features allow: a linear probe on the frozen embedding (the correspondence classifier's image "
          f"branch) reads held-out images' quadrant {hb['quadrant']:.1%}, valence {hb['valence']:.1%}, arousal "
          f"{hb['arousal']:.1%}" + (f"; the shipped image side, as quadrants, {qh['quadrant']:.1%}, valence "
                                    f"{qh['valence']:.1%}, arousal {qh['arousal']:.1%}" if qh else "") + ".",
          ""]
    L += ["## Musical quality: generated vs held-out real music", "",
          "Overlapping area (OA, 0-1) of the distributions of generated pieces and of EMOPIA test windows "
          "(histograms on shared bins; pitch classes: overlap of the mean histograms). The reference column is "
          "the OA of EMOPIA test against EMOPIA train: what two samples of real music reach.", "",
          "| feature | generated mean | real mean | OA generated vs real | previous models | OA real vs real |",
          "|---|---|---|---|---|---|"]
    for r in res["quality"]:
        gm = r["generated"] if isinstance(r["generated"], str) else f"{r['generated']:.2f}"
        rm = r["real"] if isinstance(r["real"], str) else f"{r['real']:.2f}"
        prev = PREVIOUS_OVERLAP.get(r["feature"])
        L.append(f"| {r['feature']} | {gm} | {rm} | **{r['overlap']:.2f}** | {'-' if prev is None else f'{prev:.2f}'} | "
                 f"{r['reference_overlap']:.2f} |")
    L += ["", "![quality](quality.png)", "",
          "By quadrant: generated pieces grouped by their image's quadrant, beside real EMOPIA clips grouped by "
          "their label. A model that only plays louder for happy images shows a velocity gap with no matching "
          "gap in mode or register, and loses its agreement when judged without velocity features (below).", "",
          "| quadrant | generated: density | velocity | register | major-minor r | real: density | velocity | register | major-minor r |",
          "|---|---|---|---|---|---|---|---|---|"]
    pq = res["per_quadrant"]
    for q in ("Q1", "Q2", "Q3", "Q4"):
        a, b = pq["generated_by_image_quadrant"][q], pq["real_emopia_by_label"][q]
        L.append(f"| {q} | {a['note density']:.2f} | {a['mean velocity']:.1f} | {a['register']:.1f} | {a['major-minor r']:+.3f} | "
                 f"{b['note density']:.2f} | {b['mean velocity']:.1f} | {b['register']:.1f} | {b['major-minor r']:+.3f} |")
    gp = pq["gaps"]
    L += ["", "Gaps, 95% bootstrap intervals (generated: over images; real: over EMOPIA clips, all splits): positive "
          "minus negative valence, and high minus low arousal. In real music loudness and density follow arousal, "
          "hardly valence; a valence gap in velocity without one in mode (major-minor r) is the 'louder for happy' shortcut.",
          "", "| feature | valence gap: generated | real | arousal gap: generated | real |", "|---|---|---|---|---|"]
    for feat in gp["valence"]["generated"]:
        cells = []
        for dim in ("valence", "arousal"):
            for who in ("generated", "real_emopia"):
                e, lo, hi = gp[dim][who][feat]
                cells.append(f"{e:+.3f} [{lo:+.3f}, {hi:+.3f}]" if feat == "major-minor r" else f"{e:+.2f} [{lo:+.2f}, {hi:+.2f}]")
        L.append(f"| {feat} | " + " | ".join(cells) + " |")
    nd = em["generated_judged_without_dynamics"]
    L += ["", "Judged by classifiers trained without any velocity feature: "
          + ", ".join(f"{k.replace('_', ' ')} {_f(nd[k]['value'], k.endswith('agreement'))}"
                      for k in ("quadrant_agreement", "valence_agreement", "arousal_agreement", "valence_rank_correlation"))
          + " (with them: " + ", ".join(f"{_f(g[k]['value'], k.endswith('agreement'))}"
                                         for k in ("quadrant_agreement", "valence_agreement", "arousal_agreement",
                                                   "valence_rank_correlation")) + ").", ""]
    t = res["timings"]
    L += [f"Run time: {t['total_s']:.0f} s (data {t['data_s']:.0f} s, classifiers {t['classifiers_s']:.0f} s, "
          f"generation {t['generate_s']:.0f} s, scoring {t['scoring_s']:.0f} s). Per-piece results: `pieces.csv`; "
          "every figure: `metrics.json`.", ""]
    path.write_text("\n".join(L))
