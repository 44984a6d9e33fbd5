"""Sampling: temperature, top-p and the inverse-CDF draw, on distributions with known answers."""
import numpy as np

from installation.music.sampling import sample

P = np.array([0.5, 0.3, 0.15, 0.05])
LOGITS = np.log(P)[None, :]


def test_inverse_cdf_picks_the_bucket_u_falls_in():
    u = np.array([0.1, 0.49, 0.51, 0.79, 0.81, 0.96, 0.999])
    got = sample(np.repeat(LOGITS, len(u), 0), None, 1.0, 1.0, u=u)
    assert got.tolist() == [0, 0, 1, 1, 2, 3, 3]


def test_top_p_keeps_the_smallest_set_reaching_p_and_renormalises():
    # top_p 0.75: {0.5, 0.3} (0.5 alone is short of 0.75); renormalised 0.625 / 0.375
    u = np.array([0.6, 0.62, 0.63, 0.99])
    got = sample(np.repeat(LOGITS, len(u), 0), None, 1.0, 0.75, u=u)
    assert got.tolist() == [0, 0, 1, 1]
    draws = sample(np.repeat(LOGITS, 20000, 0), np.random.default_rng(0), 1.0, 0.75)
    assert set(np.unique(draws)) == {0, 1}
    assert abs((draws == 0).mean() - 0.625) < 0.015


def test_tiny_top_p_and_zero_temperature_are_greedy():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(50, 388))
    assert (sample(logits, rng, 1.0, 1e-9) == logits.argmax(1)).all()
    assert (sample(logits, rng, 0.0, 0.95) == logits.argmax(1)).all()


def test_temperature_sharpens_and_flattens():
    n = 20000
    cold = sample(np.repeat(LOGITS, n, 0), np.random.default_rng(2), 0.5, 1.0)
    hot = sample(np.repeat(LOGITS, n, 0), np.random.default_rng(2), 2.0, 1.0)
    p_cold = P ** 2 / (P ** 2).sum()
    p_hot = np.sqrt(P) / np.sqrt(P).sum()
    assert abs((cold == 0).mean() - p_cold[0]) < 0.015
    assert abs((hot == 3).mean() - p_hot[3]) < 0.015


def test_a_row_does_not_depend_on_the_rest_of_the_batch():
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 2, size=(8, 388))
    u = rng.random(8)
    whole = sample(logits, None, 1.0, 0.9, u=u)
    alone = [int(sample(logits[i:i + 1], None, 1.0, 0.9, u=u[i:i + 1])[0]) for i in range(8)]
    assert whole.tolist() == alone
