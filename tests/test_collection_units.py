"""The collection's parts with known answers: loudness (EBU Tech 3341), mood words, titles, batch sizes,
the journal's torn lines, atomic writes, the progress line."""
import io
import math

import numpy as np
import pytest

from installation.collection import catalogue, store
from installation.collection.progress import Progress
from installation.collection.run import batch_sizes
from installation.patches.loudness import integrated_lufs, normalise


def sine(db, seconds=20.0, rate=48000, freq=1000.0, channels=2):
    t = np.arange(int(seconds * rate)) / rate
    x = 10 ** (db / 20) * np.sin(2 * np.pi * freq * t)
    return np.stack([x] * channels, 1)


@pytest.mark.parametrize("rate", [48000, 44100])
def test_loudness_of_the_ebu_test_tones(rate):
    # EBU Tech 3341, cases 1 and 2: a stereo 1 kHz sine at -23 (-33) dBFS measures -23 (-33) LUFS +-0.1
    assert integrated_lufs(sine(-23, rate=rate), rate) == pytest.approx(-23.0, abs=0.1)
    assert integrated_lufs(sine(-33, rate=rate), rate) == pytest.approx(-33.0, abs=0.1)
    # one channel only: 3 dB less
    assert integrated_lufs(sine(-23, rate=rate, channels=1), rate) == pytest.approx(-26.0, abs=0.1)


def test_loudness_gates_out_silence():
    # BS.1770's gates: 10 s of tone then 10 s of near silence measures as the tone alone
    rate = 48000
    x = np.concatenate([sine(-20, 10.0), sine(-80, 10.0)])
    assert integrated_lufs(x, rate) == pytest.approx(-20.0, abs=0.2)
    assert integrated_lufs(np.zeros((rate * 2, 2)), rate) == -math.inf


def test_normalise_reaches_the_target_unless_the_peak_forbids():
    rate = 48000
    quiet = sine(-40, 5.0)
    n = normalise(quiet, rate, -16.0, -1.0)
    assert n.lufs_before == pytest.approx(-40.0, abs=0.1)
    assert integrated_lufs(n.audio, rate) == pytest.approx(-16.0, abs=0.1)
    # a spiky piece: one full-scale click in quiet tone; the peak ceiling wins
    spiky = sine(-40, 5.0)
    spiky[1000] = 0.5
    m = normalise(spiky, rate, -16.0, -1.0)
    assert 20 * math.log10(np.max(np.abs(m.audio))) == pytest.approx(-1.0, abs=0.01)
    assert m.lufs < -16.5
    silent = normalise(np.zeros((rate, 2)), rate)
    assert silent.gain_db == 0.0 and not np.any(silent.audio)


@pytest.mark.parametrize("v, a, words", [
    (0.5, -0.5, "calm, content"), (0.5, 0.5, "happy, excited"), (-0.5, 0.5, "tense, agitated"),
    (-0.5, -0.5, "sad, gloomy"), (0.05, -0.05, "even, neutral"), (0.9, -0.3, "very calm, content"),
    (0.0, -0.4, "quiet, still"), (None, 0.2, ""),
])
def test_mood_words(v, a, words):
    assert catalogue.mood_words(v, a) == words


def test_titles_from_file_names():
    assert catalogue.title_of("05_chelsea_the_cat") == "Chelsea the cat"
    assert catalogue.title_of("starry-night") == "Starry night"
    assert catalogue.title_of("1999") == "1999"


@pytest.mark.parametrize("n, workers, batch, size", [
    (330, 1, 64, 55), (330, 2, 64, 55), (64, 1, 64, 64), (6, 2, 64, 3), (7, 2, 64, 4), (1, 4, 64, 1), (100, 3, 10, 9)])
def test_batches_divide_the_work_evenly(n, workers, batch, size):
    got = batch_sizes(n, workers, batch)
    assert got == size
    assert got <= batch and (math.ceil(n / got) % workers == 0 or n < workers)   # no worker left idle at the end


def test_journal_skips_a_torn_line_and_keeps_the_latest(tmp_path):
    j = store.Journal(tmp_path)
    j.append([{"name": "a", "v": 1}, {"name": "b", "v": 1}])
    j.append([{"name": "a", "v": 2}])
    with open(j.path, "ab") as f:
        f.write(b'{"name": "b", "v": 2, "fil')          # a kill in the middle of a write
    got = j.load()
    assert got == {"a": {"name": "a", "v": 2}, "b": {"name": "b", "v": 1}}


def test_write_if_changed_leaves_an_equal_file_alone(tmp_path):
    p = tmp_path / "x.csv"
    assert store.write_if_changed(p, b"one")
    before = p.stat()
    assert not store.write_if_changed(p, b"one")
    assert p.stat().st_ino == before.st_ino and p.stat().st_mtime_ns == before.st_mtime_ns
    assert store.write_if_changed(p, b"two") and p.read_bytes() == b"two"
    assert [q.name for q in tmp_path.iterdir()] == ["x.csv"]          # no temporary left behind


def test_one_writer_per_folder(tmp_path):
    from installation.errors import UserError
    with store.lock(tmp_path):
        with pytest.raises(UserError, match="another render"):
            with store.lock(tmp_path):
                pass


def test_progress_in_a_log_and_on_a_terminal(caplog):
    now = [0.0]
    log_p = Progress(10, already=4, stream=io.StringIO(), tty=False, every_s=30, clock=lambda: now[0])
    with caplog.at_level("INFO", logger="installation"):
        now[0] = 10.0
        log_p.update(1)                                   # too soon for a line
        now[0] = 60.0
        log_p.update(2)                                   # 3 images in 60 s: 3/min, 3 left: 1:00
    assert [r.getMessage() for r in caplog.records] == ["progress: 7/10 images, 3.0/min, 1:00 left"]
    term = io.StringIO()
    bar = Progress(4, stream=term, tty=True, clock=lambda: now[0])
    now[0] += 30
    bar.update(2)
    bar.close()
    assert "\r[###############...............] 2/4 images, 4.0/min, 0:30 left" in term.getvalue()
    assert term.getvalue().endswith("\n")


def test_the_bundled_artworks_have_titles_and_alt_texts():
    from installation.image.capture import bundled_artworks
    caps = catalogue.read_captions(bundled_artworks() / "captions.csv")
    assert set(caps) == {p.name for p in bundled_artworks().glob("*.jpg")}
    assert all(c["title"] and len(c["alt"]) > 40 for c in caps.values())


def test_a_record_after_a_torn_line_is_not_lost(tmp_path):
    j = store.Journal(tmp_path)
    j.append([{"name": "a", "v": 1}])
    with open(j.path, "ab") as f:
        f.write(b'{"name": "b", "v": 1, "fil')          # the last run was killed in the middle of this write
    rerun = store.Journal(tmp_path)
    assert rerun.load() == {"a": {"name": "a", "v": 1}}
    rerun.append([{"name": "c", "v": 1}])               # the next run's first record
    assert store.Journal(tmp_path).load() == {"a": {"name": "a", "v": 1}, "c": {"name": "c", "v": 1}}
