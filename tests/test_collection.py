"""render of a folder as a collection, through the real CLI with the real models: a corrupt image is one
line and one catalogue row while the rest is rendered; a second run rewrites nothing; a killed run is
rerun to completion; the catalogue says what was asked and made; --audio is normalised, FLAC and Opus."""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mido
import pytest

from collection_parts import REPO, artworks_folder, catalogue_rows, journal_lines
from collection_parts import render as cli
from installation.image.capture import bundled_artworks


def snapshot(folder):
    """Every file under folder: (inode, mtime_ns, size) - a rewrite changes one of them."""
    return {str(p.relative_to(folder)): (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(folder.rglob("*"))}


def read_catalogue(out):
    rows = catalogue_rows(out)
    twin = [json.loads(l) for l in (out / "catalogue.jsonl").read_text().splitlines()]
    return rows, twin


@pytest.fixture
def folder(tmp_path):
    d = artworks_folder(tmp_path / "collection", 3)
    (d / "02b_torn_scan.jpg").write_bytes((d / sorted(os.listdir(d))[0]).read_bytes()[:300])   # a truncated JPEG
    return d


def test_a_corrupt_image_is_listed_the_rest_rendered_and_a_rerun_rewrites_nothing(folder, tmp_path):
    out = tmp_path / "out"
    r = cli(folder, "--out", out, "--seconds", "6", "--seed", "7")
    assert r.returncode == 2, r.stderr
    errors = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1 and "02b_torn_scan.jpg" in errors[0] and "catalogue.csv" in errors[0], r.stderr
    assert "Traceback" not in r.stderr
    rows, twin = read_catalogue(out)
    assert [Path(r["image"]).name for r in rows] == sorted(os.listdir(folder))      # every image, in order
    assert [{k: "; ".join(v) if isinstance(v, list) else str(v) for k, v in t.items()} for t in twin] == rows
    bad = next(r for r in rows if "torn_scan" in r["image"])
    assert bad["status"] == "failed" and "02b_torn_scan.jpg" in bad["error"] and bad["midi"] == ""
    good = [r for r in rows if r is not bad]
    assert len(good) == 3 and all(r["status"] == "ok" and r["error"] == "" for r in good)
    for r in good:
        img = folder / r["image"]                                   # its name in the collection, no more
        assert r["image_sha256"] == hashlib.sha256(img.read_bytes()).hexdigest()
        mid = mido.MidiFile(out / r["midi"])
        assert float(r["duration_s"]) == pytest.approx(mid.length, abs=0.01)
        assert 4.0 <= mid.length <= 6.0 + 5.0
        assert int(r["events"]) > 20 and r["seed"] == "7" and r["decoder"] == "gru"
        assert -1 <= float(r["image_valence"]) <= 1 and -1 <= float(r["image_arousal"]) <= 1
        assert r["key"].endswith(("major", "minor")) and float(r["density"]) > 0 and 1 <= float(r["velocity"]) <= 127
        assert r["mood"] and len(r["models_sha256"]) == 64
        assert (out / r["thumbnail"]).stat().st_size > 1000
    assert len({r["work_key"] for r in good}) == 3
    before = snapshot(out)
    time.sleep(0.05)
    again = cli(folder, "--out", out, "--seconds", "6", "--seed", "7")
    assert again.returncode == 2 and "3 done before" in again.stderr, again.stderr
    assert snapshot(out) == before                                    # nothing rewritten, nothing added
    # the scan is replaced by a good picture: only it is rendered, the others are left alone
    shutil.copy(sorted(bundled_artworks().glob("*.jpg"))[4], folder / "02b_torn_scan.jpg")
    fixed = cli(folder, "--out", out, "--seconds", "6", "--seed", "7")
    assert fixed.returncode == 0, fixed.stderr
    assert "1 rendered now" in fixed.stderr and "3 done before" in fixed.stderr, fixed.stderr
    after = snapshot(out)
    for r in good:
        assert after[r["midi"]] == before[r["midi"]]
    rows2, _ = read_catalogue(out)
    assert [r["status"] for r in rows2] == ["ok"] * 4
    # other settings are other work: a new seed renders everything again
    reseeded = cli(folder, "--out", out, "--seconds", "6", "--seed", "8")
    assert reseeded.returncode == 0 and "4 rendered now" in reseeded.stderr, reseeded.stderr


def test_the_catalogue_says_what_was_asked(folder, tmp_path):
    (folder / "02b_torn_scan.jpg").unlink()
    out = tmp_path / "out"
    r = cli(folder, "--out", out, "--seconds", "4", "--valence", "0.7", "--arousal", "-0.8", "--key", "D minor")
    assert r.returncode == 0, r.stderr
    rows, _ = read_catalogue(out)
    assert len(rows) == 3
    for row in rows:
        assert (float(row["valence"]), float(row["arousal"])) == (0.7, -0.8)
        assert row["mood"] == "very calm, content" and row["key"] == "D minor"
        assert (float(row["image_valence"]), float(row["image_arousal"])) != (0.7, -0.8)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_a_stopped_run_is_rerun_to_completion(sig, tmp_path):
    d = artworks_folder(tmp_path / "imgs", variants=3)
    n = len(list(d.glob("*.jpg")))
    out = tmp_path / "out"
    proc = cli(d, "--out", out, "--seconds", "20", "--batch", "1", "--workers", "1", wait=False)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None and journal_lines(out) < 1:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(sig)                             # Ctrl-C, or a lost machine: no chance to clean up
    _, err = proc.communicate(timeout=120)
    done_before = journal_lines(out)
    assert 1 <= done_before < n
    if sig == signal.SIGINT:                          # Ctrl-C: exit 130, and the catalogue says where it stood
        assert proc.returncode == 130 and "Traceback" not in err, err
        rows, _ = read_catalogue(out)
        assert sorted({r["status"] for r in rows}) == ["ok", "pending"]
        assert sum(r["status"] == "ok" for r in rows) == done_before
    r = cli(d, "--out", out, "--seconds", "20", "--batch", "1")
    assert r.returncode == 0, r.stderr
    assert f"{done_before} done before" in r.stderr, r.stderr
    rows, _ = read_catalogue(out)
    assert [r["status"] for r in rows] == ["ok"] * n
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]           # no temporary file left behind
    for row in rows:
        assert mido.MidiFile(out / row["midi"]).length > 15


def test_audio_is_normalised_in_flac_and_opus(tmp_path):
    pytest.importorskip("fluidsynth", reason="pyfluidsynth is not installed (pip install -r requirements-audio.txt)")
    soundfile = pytest.importorskip("soundfile")
    import numpy as np
    from installation.patches.audio import synthesize
    from installation.patches.loudness import integrated_lufs

    d = tmp_path / "one"
    d.mkdir()
    shutil.copy(next(p for p in bundled_artworks().glob("*.jpg") if "starry" in p.name), d / "starry.jpg")
    out = tmp_path / "out"
    r = cli(d, "--out", out, "--seconds", "6", "--audio", "flac+opus")
    assert r.returncode == 0, r.stderr
    rows, _ = read_catalogue(out)
    assert rows[0]["audio"] == "starry.flac; starry.opus"
    flac, rate = soundfile.read(str(out / "starry.flac"))
    opus, orate = soundfile.read(str(out / "starry.opus"))
    assert rate == orate == 48000 and flac.shape[1] == 2
    assert abs(len(opus) - len(flac)) < 0.05 * rate                       # the same piece, compressed
    peak = 20 * np.log10(np.max(np.abs(flac)))
    loud = integrated_lufs(flac, rate)
    assert peak <= -0.99
    assert loud == pytest.approx(-16.0, abs=0.5) or peak > -1.1           # the target, or the peak stopped it
    raw = synthesize(out / "starry.mid", rate=rate)                        # what FluidSynth makes unaided
    assert loud > integrated_lufs(raw, rate) + 3                           # louder than before
    assert float(rows[0]["audio_lufs"]) == pytest.approx(loud, abs=0.1)
    assert (out / "starry.opus").stat().st_size < (out / "starry.flac").stat().st_size / 3


def test_one_worker_needs_no_ray(tmp_path):
    d = tmp_path / "one"
    d.mkdir()
    shutil.copy(sorted(bundled_artworks().glob("*.jpg"))[0], d / "a.jpg")
    code = ("import sys; sys.modules['ray'] = None\n"            # any `import ray` now fails
            "from installation.cli import main\n"
            f"rc = main(['render', {str(d)!r}, '--out', {str(tmp_path / 'out')!r}, '--seconds', '2', '--workers', '1'])\n"
            "assert 'ray' not in [m.split('.')[0] for m in sys.modules if sys.modules[m] is not None]\n"
            "sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "a.mid").is_file()


@pytest.mark.parametrize("args, needle", [
    (["--workers", "0"], "--workers 0"),
    (["--loudness", "3"], "--loudness 3"),
    (["--captions", "/no/such/captions.csv"], "--captions /no/such/captions.csv"),
    (["--audio", "opus", "--soundfont", "/no/such.sf2"], "/no/such.sf2"),
])
def test_option_mistakes_are_one_line(args, needle, tmp_path):
    r = cli(bundled_artworks(), "--out", tmp_path / "out", *args)
    assert r.returncode == 2, r.stderr
    err = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    assert len(err) == 1 and needle in err[0] and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "out" / "catalogue.csv").exists()                # stopped before any work
