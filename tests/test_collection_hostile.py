"""A museum's messy files through the real `render` command and the real models: a space in a name with
--audio and --gallery, names too long for temporary files, a decompression bomb beside a 12000 x 9000 scan,
a full disk (a real tmpfs), folders, links, FIFOs and devices among the images, and a catalogue fit to put
online (no paths, hosts or pids; no formulas for a spreadsheet)."""
import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from collection_parts import REPO, artworks_folder, catalogue_rows, journal_records
from collection_parts import render as cli
from installation.image.capture import bundled_artworks

CAT = bundled_artworks() / "05_chelsea_the_cat.jpg"


def need_fluidsynth():
    try:
        import fluidsynth  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("pyfluidsynth is missing in CI (pip install -r requirements-audio.txt)")
        pytest.skip("pyfluidsynth is not installed (pip install -r requirements-audio.txt)")


def errors(stderr):
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_a_space_in_a_name_with_audio_and_a_gallery(tmp_path):
    need_fluidsynth()
    d = tmp_path / "works"
    d.mkdir()
    shutil.copy(CAT, d / "my cat.jpg")
    shutil.copy(CAT, d / "two  spaces .jpg")
    out = tmp_path / "out"
    for _ in range(2):                                      # the first run and a rerun
        r = cli(d, "--out", out, "--seconds", "2", "--audio", "wav", "--gallery")
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    twin = [json.loads(line) for line in (out / "catalogue.jsonl").read_text().splitlines()]
    assert [t["audio"] for t in twin] == [["my cat.wav"], ["two  spaces .wav"]]
    html = (out / "index.html").read_text()
    assert '<source src="my%20cat.wav" type="audio/wav">' in html
    assert '<source src="two%20%20spaces%20.wav" type="audio/wav">' in html
    assert all((out / t["audio"][0]).stat().st_size > 100_000 for t in twin)


def test_names_too_long_for_a_temporary_file_are_rendered_and_recorded(tmp_path):
    d = tmp_path / "works"
    d.mkdir()
    long_cjk = "美術館の所蔵品" * 11 + "猫"                      # 78 characters, 234 bytes
    long_ascii = "a_portrait_of_" + "x" * 231                   # 245 bytes + ".jpg"
    for stem in (long_cjk, long_ascii, long_ascii[:-1] + "y"):
        shutil.copy(CAT, d / f"{stem}.jpg")
    out = tmp_path / "out"
    r = cli(d, "--out", out, "--seconds", "2", "--gallery")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    rows = catalogue_rows(out)
    assert sorted(row["image"] for row in rows) == sorted(os.listdir(d))
    assert [row["status"] for row in rows] == ["ok"] * 3
    assert len({row["midi"] for row in rows}) == 3                        # three names, three files
    for row in rows:
        assert (out / row["midi"]).is_file() and (out / row["thumbnail"]).is_file()
        assert row["midi"].startswith(Path(row["image"]).stem[:20])         # still readable
    assert len(journal_records(out)) == 3                                   # and recorded
    for p in out.rglob("*"):
        assert len(p.name.encode()) <= 255
    again = cli(d, "--out", out, "--seconds", "2", "--gallery")
    assert again.returncode == 0 and "3 done before" in again.stderr, again.stderr


def bomb_png(path, side=32000):
    """A 1-bit PNG of side x side white pixels: about 130 KB of file, a gigapixel decoded."""
    row = b"\0" + b"\xff" * (side // 8)
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()

    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    ihdr = side.to_bytes(4, "big") * 2 + bytes([1, 0, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def test_a_decompression_bomb_is_refused_from_its_header_and_a_large_scan_rendered(tmp_path):
    import cv2
    import numpy as np
    d = tmp_path / "works"
    d.mkdir()
    bomb_png(d / "bomb.png")
    scan = np.zeros((9000, 12000, 3), np.uint8)                          # a museum's 12000 x 9000 scan
    scan[:, :, 1] = (np.arange(12000) % 256)[None, :]
    scan[:3000, :, 2] = 200
    cv2.imwrite(str(d / "scan.jpg"), scan, [cv2.IMWRITE_JPEG_QUALITY, 85])
    del scan
    out = tmp_path / "out"
    code = ("import re, sys\nfrom installation.cli import main\n"
            f"rc = main(['render', {str(d)!r}, '--out', {str(out)!r}, '--seconds', '1'])\n"
            "print('peak_kib', re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1),"
            " file=sys.stderr)\n"                       # VmHWM: ru_maxrss would carry pytest's own peak across exec
            "sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    [err] = errors(r.stderr)
    assert "bomb.png: 32000 x 32000 pixels" in err, err
    peak = int(r.stderr.split("peak_kib ")[1].split()[0]) * 1024
    assert peak < 2**30, peak                                           # decoded, the bomb alone is 3 GiB
    rows = {row["image"]: row for row in catalogue_rows(out)}
    assert rows["scan.jpg"]["status"] == "ok" and rows["bomb.png"]["status"] == "failed"
    assert "32000 x 32000" in rows["bomb.png"]["error"]


def test_folders_links_fifos_and_devices_are_named_never_opened(tmp_path):
    d = tmp_path / "works"
    d.mkdir()
    shutil.copy(CAT, d / "a_cat.jpg")
    (d / "x.jpg").mkdir()                                   # a folder named like an image
    os.symlink("loop_b.jpg", d / "loop_a.jpg")              # a loop of links
    os.symlink("loop_a.jpg", d / "loop_b.jpg")
    os.mkfifo(d / "pipe.jpg")                               # opening it would wait for ever
    os.symlink("/dev/zero", d / "zero.png")                 # reading it would never end
    os.symlink("/etc/passwd", d / "secret.jpg")             # outside the collection
    os.symlink("a_cat.jpg", d / "same_cat.jpg")             # inside: followed
    shutil.copy(CAT, d / "animated.gif")
    (d / "gone.jpg").symlink_to(d / "nothing_here.jpg")     # a broken link
    out = tmp_path / "out"
    r = cli(d, "--out", out, "--seconds", "2", timeout=180)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    why = {"x.jpg": "a folder", "loop_a.jpg": "loops", "loop_b.jpg": "loops", "pipe.jpg": "a FIFO",
           "zero.png": "outside the collection", "secret.jpg": "outside the collection",
           "animated.gif": "not a supported image type (.gif", "gone.jpg": "broken"}
    lines = [line for line in r.stderr.splitlines() if "skipped" in line]
    for name, reason in why.items():
        said = [line for line in lines if f" {name}:" in line]
        assert len(said) == 1 and reason in said[0], (name, lines)
    rows = {row["image"]: row for row in catalogue_rows(out)}
    assert rows["a_cat.jpg"]["status"] == rows["same_cat.jpg"]["status"] == "ok"
    for name, reason in why.items():
        assert rows[name]["status"] == "skipped" and reason in rows[name]["error"], rows[name]
        assert rows[name]["image_sha256"] == ""                             # never read, never hashed
    import hashlib
    published = (out / "catalogue.csv").read_text() + (out / "catalogue.jsonl").read_text()
    assert hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest() not in published


def test_the_catalogue_is_fit_to_put_online(tmp_path):
    d = tmp_path / "works"
    d.mkdir()
    for name in ("=cmd.jpg", "+SUM(A1).jpg", "-2+3.jpg", "@risk.jpg", "plain.jpg"):
        shutil.copy(CAT, d / name)
    (d / "=torn.jpg").write_bytes(CAT.read_bytes()[:400])
    captions = tmp_path / "captions.csv"
    captions.write_text('image,title,alt\nplain.jpg,"=HYPERLINK(""http://x.example"",""click"")",\t@alt\n')
    out = tmp_path / "out"
    r = cli(d, "--out", out, "--seconds", "2", "--captions", captions, "--gallery")
    assert r.returncode == 2 and "=torn.jpg" in errors(r.stderr)[0], r.stderr
    text = (out / "catalogue.csv").read_text() + (out / "catalogue.jsonl").read_text()
    for secret in (str(tmp_path), str(REPO), socket.gethostname(), "\"pid\"", "host"):
        assert secret not in text, secret
    with open(out / "catalogue.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and {"host", "pid", "node"}.isdisjoint(rows[0])
    for row in rows:
        for col in ("image", "title", "alt_text", "error", "midi", "audio", "thumbnail"):
            assert row[col][:1] not in ("=", "+", "-", "@", "\t", "\r"), (col, row[col])
    by_name = {row["image"].lstrip("'"): row for row in rows}
    assert set(by_name) == set(os.listdir(d))                              # names, escaped but whole
    assert by_name["plain.jpg"]["title"] == "'=HYPERLINK(\"http://x.example\",\"click\")"
    twin = {t["image"]: t for t in map(json.loads, (out / "catalogue.jsonl").read_text().splitlines())}
    assert twin["plain.jpg"]["title"].startswith("=HYPERLINK")              # JSON is data: kept as written
    assert float(by_name["plain.jpg"]["valence"]) == twin["plain.jpg"]["valence"]   # numbers stay numbers
    rec = journal_records(out)                                             # the private journal keeps the where
    assert all(r["host"] == socket.gethostname() and r["pid"] > 0 for r in rec if r["status"] == "ok")


def test_titles_keep_their_capitals_and_a_silent_gallery_offers_no_player(tmp_path):
    out = tmp_path / "out"
    r = cli(bundled_artworks(), "--out", out, "--seconds", "1", "--gallery")
    assert r.returncode == 0, r.stderr
    rows = {Path(row["image"]).name: row for row in catalogue_rows(out)}
    assert rows["01_astronaut_eileen_collins.jpg"]["title"] == "Astronaut Eileen Collins"
    assert rows["02_hubble_extreme_deep_field.jpg"]["title"] == "Hubble eXtreme Deep Field"
    html = (out / "index.html").read_text()
    assert "<audio" not in html and "press play" not in html


@pytest.fixture
def small_disk(tmp_path):
    """A real 4 MiB tmpfs (root may mount one here; elsewhere the test says why it cannot run)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True, text=True)
    if r.returncode:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs for the full-disk test: {r.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs (needs root): {r.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def test_a_full_disk_is_one_line_lists_only_what_was_recorded_and_the_rerun_finishes(tmp_path, small_disk):
    d = artworks_folder(tmp_path / "works")
    out = small_disk / "out"
    out.mkdir()
    filler = small_disk / "filler"
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    filler.write_bytes(b"\0" * (free - 64 * 1024))                       # 64 KiB left: two or three images
    job = (d, "--out", out, "--seconds", "2", "--batch", "1", "--gallery")
    r = cli(*job)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    [err] = errors(r.stderr)
    assert f"--out {out}" in err and "No space left on device" in err and "run the same command again" in err, err
    recorded = {rec["rel"] for rec in journal_records(out) if rec["status"] == "ok"}
    assert 1 <= len(recorded) < 6, r.stderr
    if (out / "catalogue.csv").exists():                                 # it may not have fitted either
        assert {row["image"] for row in catalogue_rows(out) if row["status"] == "ok"} <= recorded
    if (out / "index.html").exists():
        html = (out / "index.html").read_text()
        assert all(f">{rec['title']}<" in html for rec in catalogue_rows(out) if rec["status"] == "ok")
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]          # no temporary file left filling it
    filler.unlink()                                                      # space again: the rerun finishes
    again = cli(*job)
    assert again.returncode == 0, again.stderr
    rows = catalogue_rows(out)
    assert [row["status"] for row in rows] == ["ok"] * 6
    made = [rec["rel"] for rec in journal_records(out) if rec["status"] == "ok"]
    assert sorted(made) == sorted(row["image"] for row in rows)          # every image rendered exactly once
    assert "press play" not in (out / "index.html").read_text() and (out / "index.html").read_text().count("<article") == 6


def test_a_newline_in_a_name_is_still_one_line(tmp_path):
    d = tmp_path / "works"
    d.mkdir()
    shutil.copy(CAT, d / "two\nlines.jpg")
    (d / "torn\nscan.jpg").write_bytes(CAT.read_bytes()[:400])
    os.mkfifo(d / "pipe\nname.jpg")
    r = cli(d, "--out", tmp_path / "out", "--seconds", "2")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.splitlines()
    assert not [line for line in lines if line.startswith(("lines", "scan", "name"))], lines    # no line broken in two
    assert len([line for line in lines if "skipped pipe\\nname.jpg: a FIFO" in line]) == 1, lines
    assert len([line for line in lines if "ERROR" in line and "torn\\nscan.jpg" in line]) == 1, lines
    rows = {row["image"]: row for row in catalogue_rows(tmp_path / "out")}
    assert rows["two\nlines.jpg"]["status"] == "ok"                           # the catalogue keeps the real name


def test_the_kiosk_reader_refuses_a_bomb_and_never_waits_on_a_fifo(tmp_path):
    bomb_png(tmp_path / "bomb.png")
    os.mkfifo(tmp_path / "pipe.jpg")
    # the peak from /proc (VmHWM, this process's own memory): ru_maxrss carries the forking parent's peak
    # across exec, so a test run that had grown past the bound would fail here whatever the reader does
    code = ("import re\nfrom installation.image.capture import _read_bgr\n"
            f"a, b = _read_bgr({str(tmp_path / 'bomb.png')!r}) is None, _read_bgr({str(tmp_path / 'pipe.jpg')!r}) is None\n"
            "print(a, b, re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    bomb_refused, fifo_refused, peak_kib = r.stdout.split()
    assert (bomb_refused, fifo_refused) == ("True", "True"), r.stderr
    assert int(peak_kib) < 512 * 1024                                          # decoded, the bomb alone is 3 GiB
