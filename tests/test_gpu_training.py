"""What a training run on a lent GPU relies on, checked on the CPU: the wall-time budget and its learning-rate
schedule, batches prepared on a thread, fp16 weight files under a size limit, POP909 in the event cache.

The GPU run itself (installation/training/gpu_train_transformer.sh) cannot run in CI; these parts of it can.
"""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training dependencies (requirements-train.txt) not installed")


def _corpus(n_pieces=6, length=400, seed=0):
    """A corpus of real-looking event sequences: note-on, time shift, note-off cycles over random pitches."""
    from installation.music import events as E
    from installation.training.data import MusicCorpus, Piece

    rng = np.random.default_rng(seed)
    chunks, index, pieces, at = [], [], [], 0
    for p in range(n_pieces):
        pitch = rng.integers(48, 72, length // 3)
        ev = np.stack([pitch, np.full_like(pitch, E.TIME_SHIFT + 9), E.NOTE_OFF + pitch], 1).ravel()
        chunks.append(ev)
        index.append((at, len(ev), p, 1))
        at += len(ev)
        pieces.append(Piece(f"p{p}.mid", "x", "train", p % 4 if p % 2 else -1))
    return MusicCorpus(np.concatenate(chunks).astype(np.int16), np.array(index, np.int64), pieces)


def test_learning_rate_follows_the_clock_when_the_time_budget_runs_out_first():
    from installation.training.train import PhaseConfig, learning_rate

    cfg = PhaseConfig(steps=100_000, lr=1e-3, warmup=10, max_seconds=100.0)
    assert learning_rate(cfg, 0, 0.0) == pytest.approx(1e-4)            # warm-up: 1/10 of the peak
    assert learning_rate(cfg, 9, 0.0) == pytest.approx(1e-3)
    # few steps done but half the time spent: the cosine is half-way, (0.1 + 0.9 * 0.5) * lr
    assert learning_rate(cfg, 20, 50.0) == pytest.approx(0.55e-3)
    assert learning_rate(cfg, 20, 100.0) == pytest.approx(1e-4)          # budget spent: lr / 10
    # without a time budget the steps alone set it (the CPU runs, as before)
    plain = PhaseConfig(steps=100, lr=1e-3)
    assert learning_rate(plain, 50, 1e9) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2))))


def test_batches_prepared_ahead_on_a_thread_are_the_serial_ones():
    from installation.training.data import WindowSampler
    from installation.training.train import PhaseConfig, batches

    corpus = _corpus()
    cfg = PhaseConfig(batch=5, seq_len=32)
    sampler = WindowSampler(corpus, np.arange(len(corpus.index)), 32)
    serial = batches(sampler, np.random.default_rng(3), cfg, emotion=True, ahead=0)
    threaded = batches(sampler, np.random.default_rng(3), cfg, emotion=True, ahead=4)
    for _ in range(6):
        a, b = next(serial), next(threaded)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    threaded.close()                                 # the filling thread stops


def test_a_phase_stops_when_its_time_budget_is_spent(tmp_path):
    from installation.training.data import WindowSampler
    from installation.training.train import PhaseConfig, run_phase
    from installation.training.transformer import TransformerConfig, TransformerMusicModel

    corpus = _corpus()
    model = TransformerMusicModel(TransformerConfig(d_model=16, layers=1, heads=2, window=32))
    cfg = PhaseConfig(steps=1_000_000, batch=2, seq_len=16, eval_every=1_000_000, max_seconds=1.0)
    sampler = WindowSampler(corpus, np.arange(len(corpus.index)), 16)
    vx, vy, _, vc = sampler.fixed(4)
    seen = []
    state = run_phase("pretrain", model, cfg, sampler, (torch.from_numpy(vx), torch.from_numpy(vy), torch.from_numpy(vc)),
                      tmp_path, False, 0, snapshot=lambda name, sd: seen.append(name))
    assert 1 <= state["step"] < 1_000_000 and state["done"]
    assert len(state["history"]) == 1 and state["history"][0]["seconds"] >= 1.0
    assert seen == ["pretrain"]                     # the first validation is a new best


def test_weights_come_back_in_fp16_files_under_the_limit(tmp_path):
    from installation.training.shards import load_shards, save_shards
    from installation.training.transformer import TransformerConfig, TransformerMusicModel

    cfg = TransformerConfig(d_model=64, layers=2, heads=2, window=32)
    model = TransformerMusicModel(cfg)
    limit = 60_000                                   # bytes: forces several files
    paths = save_shards(model.state_dict(), cfg.to_dict(), tmp_path, "finetune", limit=limit)
    assert len(paths) > 2
    biggest = max(v.numel() * 2 for v in model.state_dict().values())
    assert all(p.stat().st_size < max(limit, biggest) + 20_000 for p in paths)   # tensor data + pickle overhead
    state, config = load_shards(tmp_path, "finetune")
    back = TransformerMusicModel(TransformerConfig(**config))
    back.load_state_dict(state)
    for k, v in model.state_dict().items():
        assert state[k].dtype == v.dtype
        assert torch.allclose(state[k], v, atol=1e-3, rtol=1e-3)          # fp16 rounding only
    paths[1].unlink()
    with pytest.raises(FileNotFoundError):          # a partial set is refused, not half-loaded
        load_shards(tmp_path, "finetune")


def test_pop909_is_listed_for_pretraining_only_and_encoded_once(shared_data):
    from installation.training import data as D

    without = D.list_music(shared_data)
    pieces = D.list_music(shared_data, pop909=True)
    pop = [p for p in pieces if p.source == "pop909"]
    assert len(pieces) - len(without) == len(pop) == 909
    assert all(p.quadrant == -1 for p in pop) and {p.split for p in pop} == {"train", "val"}
    keep = [pop[0], without[0]]
    c = D.encode_corpus(shared_data, keep, one_stretch=("pop909",))
    per_piece = np.bincount(c.index[:, 2], minlength=2)
    assert list(per_piece) == [1, len(D.STRETCHES)]  # POP909 unstretched only; EMOPIA in every stretch
    assert D.STRETCHES[c.index[c.index[:, 2] == 0][0, 3]] == 1.0
