"""The evaluation's metrics on tiny cases with answers worked out by hand, and its judges on known data."""
from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="the evaluation needs scikit-learn (requirements-train.txt)")

from installation.music import events as E  # noqa: E402
from installation.evaluation import classifiers as CL  # noqa: E402
from installation.evaluation import metrics as MET  # noqa: E402
from installation.measures import music_features as MF  # noqa: E402
from installation.evaluation import pipeline as PL  # noqa: E402
from installation.evaluation import quality as QUAL  # noqa: E402
from installation.music.events import Note  # noqa: E402


# --- agreement and chance ---------------------------------------------------------------

def test_agreement_counts_matching_labels():
    assert MET.agreement([0, 1, 2, 3], [0, 1, 0, 0]) == 0.5
    # K pieces per image: image 0 (label 0) gets [0, 0], image 1 (label 1) gets [1, 0] -> 3 of 4 agree
    assert MET.agreement(np.array([0, 1]), np.array([[0, 0], [1, 0]])) == 0.75
    assert math.isnan(MET.agreement([], []))


def test_chance_agreement_is_sum_of_marginal_products():
    # p_a = (1/2, 1/2), p_b = (3/4, 1/4): 1/2 * 3/4 + 1/2 * 1/4 = 1/2
    assert MET.chance_agreement([0, 0, 1, 1], [0, 0, 0, 1]) == pytest.approx(0.5)
    # a always 0, b 0 three times in four: 1 * 3/4
    assert MET.chance_agreement([0, 0, 0, 0], [0, 0, 0, 1]) == pytest.approx(0.75)
    # a class missing from one side still counts for the other: p_a = (1, 0, 0), p_b = (0, 1/2, 1/2) -> 0
    assert MET.chance_agreement([0, 0], [1, 2], classes=[0, 1, 2]) == 0.0


def test_majority_baseline_uses_the_training_majority():
    assert MET.majority_baseline([1, 1, 0], [1, 0, 0, 0]) == 0.25


# --- rank correlation --------------------------------------------------------------------

def test_rank_gives_ties_their_average_rank():
    assert MET.rank([10, 20, 20, 30]).tolist() == [1, 2.5, 2.5, 4]
    assert MET.rank([3, 1, 2]).tolist() == [3, 1, 2]


def test_spearman_known_values():
    x = [1, 2, 3, 4, 5]
    assert MET.spearman(x, [v ** 3 for v in x]) == pytest.approx(1.0)          # monotone, not linear
    assert MET.spearman(x, [-v for v in x]) == pytest.approx(-1.0)
    # with a tie: rank deviations x (-1.5, -.5, .5, 1.5), y (-1.5, 0, 0, 1.5) -> 4.5 / sqrt(5 * 4.5) = 3 / sqrt(10)
    assert MET.spearman([1, 2, 3, 4], [1, 2, 2, 3]) == pytest.approx(3 / math.sqrt(10))
    assert math.isnan(MET.spearman([1, 2, 3], [7, 7, 7]))                      # undefined, not 0
    assert math.isnan(MET.spearman([1], [2]))


def test_spearman_matches_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 5, 40), rng.integers(0, 4, 40)
    assert MET.spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0])


# --- bootstrap and shuffled control ---------------------------------------------------------

def test_bootstrap_interval_on_a_known_proportion():
    hits = np.array([1] * 140 + [0] * 60)          # exactly 70%; normal approximation +-1.96 * sqrt(.21 / 200) = +-0.064
    est, lo, hi = MET.bootstrap_ci(lambda idx: hits[idx].mean(), len(hits), resamples=2000, seed=1)
    assert est == pytest.approx(0.7)
    assert 0.62 < lo < 0.67 and 0.73 < hi < 0.78


def test_bootstrap_interval_covers_the_true_mean_about_95_percent():
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(200):
        x = rng.normal(2.0, 1.0, 60)
        _, lo, hi = MET.bootstrap_ci(lambda idx: x[idx].mean(), len(x), resamples=300, seed=trial)
        covered += lo <= 2.0 <= hi
    assert 0.88 <= covered / 200 <= 0.99


def test_bootstrap_degenerate_cases():
    same = np.full(10, 0.3)
    assert MET.bootstrap_ci(lambda idx: same[idx].mean(), 10, resamples=50) == pytest.approx((0.3, 0.3, 0.3))
    assert all(math.isnan(v) for v in MET.bootstrap_ci(lambda idx: 1.0, 0))
    est, lo, hi = MET.bootstrap_ci(lambda idx: float("nan"), 5, resamples=20)
    assert math.isnan(lo) and math.isnan(hi)


def test_shuffled_control_falls_to_chance_for_a_perfect_pairing():
    img = np.array([0, 1] * 50)
    mus = img.copy()                                # the music always matches its own image
    assert MET.agreement(img, mus) == 1.0
    mean, lo, hi = MET.shuffled(lambda perm: MET.agreement(img, mus[perm]), len(img), permutations=400, seed=0)
    assert mean == pytest.approx(0.5, abs=0.03)     # chance for two balanced classes
    assert hi < 1.0
    assert MET.permutation_p(1.0, lambda perm: MET.agreement(img, mus[perm]), len(img), permutations=200) < 0.01


def test_shuffled_control_keeps_a_pairing_independent_of_the_images():
    img = np.array([0, 1] * 50)
    mus = np.ones(100, int)                         # always 'positive', whatever the image
    mean, lo, hi = MET.shuffled(lambda perm: MET.agreement(img, mus[perm]), 100, permutations=50)
    assert (mean, lo, hi) == pytest.approx((0.5, 0.5, 0.5))


def test_icc_known_values():
    assert MET.icc1([[1, 1], [3, 3], [5, 5]]) == pytest.approx(1.0)          # the group decides everything
    assert MET.icc1([[1, 3], [3, 1], [2, 2]]) == pytest.approx(-1.0)         # equal group means: -1 / (K - 1)
    # means 1.5, 3.5: MSB = 2 * ((1.5 - 2.5)^2 + 1) / 1 = 4, MSW = 4 * 0.25 / 2 = 0.5 -> 3.5 / 4.5
    assert MET.icc1([[1, 2], [3, 4]]) == pytest.approx(3.5 / 4.5)
    assert math.isnan(MET.icc1([[1, 2, 3]]))


# --- overlap ---------------------------------------------------------------------------

def test_overlap_area_identical_disjoint_and_half():
    a = np.arange(100.0)
    assert MET.overlap_area(a, a.copy()) == pytest.approx(1.0)
    assert MET.overlap_area(a, a + 1000) == pytest.approx(0.0)
    edges = np.arange(0.0, 16.0)                    # 15 unit bins
    a = np.arange(0, 10) + 0.5                       # one value in each of bins 0..9
    b = np.arange(5, 15) + 0.5                       # bins 5..14: half of each mass is shared
    assert MET.overlap_area(a, b, edges) == pytest.approx(0.5)


def test_histogram_overlap():
    assert MET.histogram_overlap([1, 0], [0, 1]) == 0.0
    assert MET.histogram_overlap([2, 2], [1, 0]) == pytest.approx(0.5)        # normalised first
    assert MET.histogram_overlap(np.ones(12), np.ones(12) * 3) == pytest.approx(1.0)


# --- music features --------------------------------------------------------------------------

def _c_major_piece(seconds: float, velocity: int = 80, step: float = 0.5) -> list[Note]:
    pitches = [60, 64, 67, 72, 67, 64]
    return [Note(pitches[i % 6], velocity, i * step, i * step + step * 0.9) for i in range(int(seconds / step))]


def test_windows_start_at_the_first_onset_and_hop():
    notes = [Note(60, 64, 5.0 + t, 6.0 + t) for t in range(50)]      # 5 s of silence, then 50 s of notes
    ws = MF.windows(notes, length=30.0, hop=10.0)
    assert len(ws) == 3                                                # starts 5, 15, 25 (last end 55, 55 - 30 = 25)
    assert all(w == 30.0 for _, w in ws)
    assert ws[0][0][0].start == 0.0 and len(ws[0][0]) == 30
    assert ws[2][0][-1].end == pytest.approx(30.0)                     # the last note, 54..55, ends the window
    short = MF.windows(notes[:10])                                     # 10 s: one window of its own length
    assert len(short) == 1 and short[0][1] == pytest.approx(10.0)
    assert len(MF.windows(notes[:45], length=30.0, hop=10.0)) == 2     # 45 s: starts 5 and 15 only


def test_describe_a_c_major_arpeggio():
    notes = _c_major_piece(30.0, velocity=80)
    x, raw = MF.describe(notes, 30.0)
    f = dict(zip(MF.FEATURE_NAMES, x))
    assert f["note_density"] == pytest.approx(60 / 30)
    assert f["velocity_mean"] == 80 and f["velocity_std"] == 0
    assert f["pitch_p95"] - f["pitch_p5"] == f["pitch_range"]
    assert f["key_mode"] > 0                                           # C E G reads as major
    assert np.argmax(x[:12]) in (0, 4, 7)                              # key-relative: the mass sits on the triad
    assert f["polyphony_mean"] == pytest.approx(1.0)
    assert np.exp(f["log_ioi_median"]) == pytest.approx(0.5)
    assert raw.pch.sum() == pytest.approx(1.0)
    assert MF.describe(notes[:3], 30.0) is None                        # too few notes


def test_generated_features_decode_events_like_real_music():
    loud = E.notes_to_events(_c_major_piece(30.0, velocity=100))
    empty = E.notes_to_events([Note(60, 64, 0.0, 1.0)])
    X, ok, raws, counts = PL.generated_features([loud, empty], 30.0)
    assert ok.tolist() == [True, False] and np.isnan(X[1]).all()
    # velocity 100 is stored in bin 24 (97..100) and decodes to 99
    assert X[0, MF.column("velocity_mean")] == 99
    assert counts.tolist() == [60, 1]


def test_quality_overlap_is_one_against_itself():
    X = np.stack([MF.describe(_c_major_piece(30.0, velocity=v, step=s), 30.0)[0]
                  for v, s in ((60, 0.5), (70, 0.25), (90, 0.4), (50, 0.3))])
    raws = [MF.describe(_c_major_piece(30.0, velocity=v, step=s), 30.0)[1] for v, s in ((60, 0.5), (70, 0.25), (90, 0.4), (50, 0.3))]
    rows = QUAL.compare(X, raws, X, raws)
    assert all(r["overlap"] == pytest.approx(1.0) for r in rows)
    gaps = QUAL.gaps(X, np.array([True, True, False, False]), resamples=50)
    assert gaps["mean velocity"][0] == pytest.approx((60 + 70) / 2 - (90 + 50) / 2, abs=1.5)   # bins decode to +-2


# --- scoring a whole set of pairs ---------------------------------------------------------------

def test_score_on_constructed_pairs():
    n, K = 40, 2
    img_val = np.linspace(1.5, 8.5, n)
    img_v = (img_val > 5).astype(int)
    img_a = np.array([0, 1] * (n // 2))
    img_q = np.array([CL_quadrant(v, a) for v, a in zip(img_v, img_a)])
    pv = np.repeat(((img_val - 1) / 8)[:, None], K, axis=1)            # music valence rises with image valence
    p = PL.Pairs(img_q, img_val, img_v, img_a, np.repeat(img_q[:, None], K, 1), np.repeat(img_v[:, None], K, 1),
                 1 - np.repeat(img_a[:, None], K, 1), pv)                # arousal always wrong
    s = PL.score(p, resamples=200, permutations=100)
    assert s["quadrant_agreement"]["value"] == 1.0
    assert s["valence_agreement"]["value"] == 1.0
    assert s["arousal_agreement"]["value"] == 0.0
    assert s["valence_rank_correlation"]["value"] == pytest.approx(1.0)
    assert s["valence_agreement"]["chance"] == pytest.approx(0.5)
    assert abs(s["valence_rank_correlation"]["shuffled"]) < 0.1
    assert s["valence_agreement"]["p_vs_shuffled"] < 0.05


def CL_quadrant(v: int, a: int) -> int:
    return {(1, 1): 0, (0, 1): 1, (0, 0): 2, (1, 0): 3}[(v, a)]


# --- the judges ----------------------------------------------------------------------------------

def test_correspondence_classifier_learns_same_or_not_on_separable_data():
    rng = np.random.default_rng(0)
    F = len(MF.FEATURE_NAMES)
    img_means, mus_means = rng.normal(0, 3, (4, 80)), rng.normal(0, 3, (4, F))

    def images(n):
        q = rng.integers(0, 4, n)
        return img_means[q] + rng.normal(0, 1, (n, 80)), q

    def music(n):
        q = rng.integers(0, 4, n)
        return mus_means[q] + rng.normal(0, 1, (n, F)), q

    (ei, qi), (xm, qm) = images(400), music(400)
    clf = CL.MusicEmotionClassifier(c_grid=(0.1,)).fit(xm, qm)
    corr = CL.CorrespondenceClassifier(pairs=4000).fit(ei, qi, np.arange(400), clf, xm, qm, np.arange(400))
    (ev, qv), (xv, qmv) = images(200), music(200)
    assert corr.validate(ev, qv, xv, qmv, n=1000) > 0.9
    same = corr.match_proba(ev[:50], xv[[np.flatnonzero(qmv == q)[0] for q in qv[:50]]])
    assert (same > 0.5).mean() > 0.9


def test_music_classifier_beats_the_majority_on_emopia_test(shared_data):
    """A small slice of EMOPIA train (about 100 clips) against the whole official test split."""
    from installation.evaluation import datasets as DS

    mw = DS.load_music(shared_data, sources=("emopia",), event_cache=None, limit_per_split=100)
    tr, te = mw.rows(split="train"), mw.rows(split="test")
    assert len(np.unique(mw.piece[te])) >= 80                     # the whole test split (88 clips)
    clf = CL.MusicEmotionClassifier(c_grid=(0.1,)).fit(mw.X[tr], mw.quadrant[tr])
    acc = clf.accuracy(mw.X[te], mw.quadrant[te])
    y_tr, y_te = CL.targets_of(mw.quadrant[tr]), CL.targets_of(mw.quadrant[te])
    for t in CL.TARGETS:
        base = MET.majority_baseline(y_tr[t], y_te[t])
        assert acc[t] > base + 0.1, f"{t}: {acc[t]:.3f} vs majority {base:.3f}"


def test_cli_defaults_and_checks():
    from installation.evaluation.__main__ import parse

    a = parse([])
    assert a.k == 3 and a.seconds == 30.0 and a.out.name.startswith("evaluation-") and a.out.parent.name == "reports"
    assert parse(["--k", "5", "--limit-images", "10"]).limit_images == 10
    with pytest.raises(SystemExit):
        parse(["--k", "0"])
