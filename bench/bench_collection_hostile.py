"""A hostile collection of 1,000 files: `render --workers 2`, killed twice, its disk filled once, then finished.

Files (in a temporary folder): N-K Emotion6 photographs from ../shared/data under hostile names (spaces,
78-character CJK names, 245-byte names, names beginning with = + - @ or a tab, markup and quotes, an upper
case extension, emoji), one 12000 x 9000 scan, and K bad entries: truncated and empty JPEGs, text named
.jpg, a 32000 x 32000 PNG bomb, FIFOs, folders named x.jpg, link loops, links to /dev/zero and /etc/passwd,
a broken link, GIFs. OUT is a real tmpfs (mounted here: needs root).

Runs, all `render DIR --out OUT --workers 2 --seconds 1 --batch 16 --gallery`:
1. SIGKILL the driver once the journal holds N/7 records; 2. again at 2N/5; 3. at 3N/5 a file fills the
tmpfs: the run must end with one disk-full line; 4. the file removed, the run finishes.
Checks: every good image has exactly one "ok" record in the journal and a row "ok"; every bad entry is
named in exactly one line of the last run's log; no temporary file left; each Ray worker's peak resident
memory (VmHWM, sampled every 0.25 s) under 1 GiB; index.html opened by headless Chromium shows one
article per good image.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import common

EMOTION6 = common.REPO.parent / "shared" / "data" / "images" / "emotion6" / "images"
FLAGS = ("--workers", "2", "--seconds", "1", "--batch", "16", "--gallery")


def hostile_name(i: int, src: Path) -> str:
    kinds = [f"{i:04d} {src.parent.name} photo.jpg", f"{'美術館の所蔵品' * 11}{i % 10}{chr(0x4e00 + i)}.jpg",
             f"{i:04d}_" + "x" * 240 + ".jpg", f"=HYPERLINK(\"x{i}\").jpg", f"+{i}.jpg", f"-{i}-2.jpg", f"@{i}.jpg",
             f"\t{i}.jpg", f"<img src=x onerror=alert({i})> & 'q'.jpg", f"UPPER {i}.JPG", f"🎨 {i}.jpeg", f"plain_{i}.jpg"]
    return kinds[i % len(kinds)]


def bomb(path: Path, side: int = 32000) -> None:
    row = b"\0" + b"\xff" * (side // 8)
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()

    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", side.to_bytes(4, "big") * 2 + bytes([1, 0, 0, 0, 0]))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def build(d: Path, n: int) -> tuple[list[str], list[str]]:
    """The folder: returns (good names, bad names)."""
    import cv2
    import numpy as np
    srcs = sorted(EMOTION6.glob("*/*.jpg"))
    bad: list[str] = []
    sample = next(iter(srcs)).read_bytes()
    for k in range(10):
        (d / f"torn {k}.jpg").write_bytes(sample[:300 + 50 * k])
        bad.append(f"torn {k}.jpg")
    for k in range(4):
        (d / f"empty{k}.jpg").write_bytes(b"")
        (d / f"notes{k}.jpg").write_text("not an image\n")
        bad += [f"empty{k}.jpg", f"notes{k}.jpg"]
    bomb(d / "bomb.png")
    for k in range(2):
        os.mkfifo(d / f"pipe{k}.jpg")
        (d / f"folder{k}.jpg").mkdir()
        os.symlink(f"loop{k}b.jpg", d / f"loop{k}a.jpg")
        os.symlink(f"loop{k}a.jpg", d / f"loop{k}b.jpg")
        shutil.copy(srcs[k], d / f"anim{k}.gif")
        bad += [f"pipe{k}.jpg", f"folder{k}.jpg", f"loop{k}a.jpg", f"loop{k}b.jpg", f"anim{k}.gif"]
    os.symlink("/dev/zero", d / "zero.jpg")
    os.symlink("/etc/passwd", d / "passwd.jpg")
    os.symlink(d / "nowhere.jpg", d / "broken.jpg")
    bad += ["bomb.png", "zero.jpg", "passwd.jpg", "broken.jpg"]
    scan = np.zeros((9000, 12000, 3), np.uint8)
    scan[:, :, 1] = (np.arange(12000) % 256)[None, :]
    scan[:3000, :, 2] = 200
    cv2.imwrite(str(d / "scan 12000x9000.jpg"), scan, [cv2.IMWRITE_JPEG_QUALITY, 85])
    good = ["scan 12000x9000.jpg"]
    for i in range(n - len(bad) - 1):
        name = hostile_name(i, srcs[i % len(srcs)])
        shutil.copy(srcs[i % len(srcs)], d / name)
        good.append(name)
    return good, bad


class Workers:
    """Peak resident memory (VmHWM) of every Ray RenderActor process and of the driver, sampled."""

    def __init__(self):
        self.peak: dict[int, int] = {}
        self.driver_peak = 0
        self.driver = None
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.wait(0.25):
            for d in Path("/proc").iterdir():
                if not d.name.isdigit():
                    continue
                try:
                    cmd = (d / "cmdline").read_bytes()
                    if b"RenderActor" not in cmd and int(d.name) != self.driver:
                        continue
                    hwm = next(int(l.split()[1]) * 1024 for l in (d / "status").read_text().splitlines()
                               if l.startswith("VmHWM"))
                except (OSError, StopIteration, ValueError):
                    continue
                if int(d.name) == self.driver:
                    self.driver_peak = max(self.driver_peak, hwm)
                else:
                    self.peak[int(d.name)] = max(self.peak.get(int(d.name), 0), hwm)

    def stop(self):
        self._stop.set()
        self._t.join()


def journal(out: Path) -> list[dict]:
    p = out / ".collection" / "journal.jsonl"
    recs = []
    for line in (p.read_bytes().splitlines() if p.exists() else []):
        try:
            recs.append(json.loads(line))
        except ValueError:
            pass
    return recs


def torn(out: Path) -> int:
    p = out / ".collection" / "journal.jsonl"
    return sum(1 for line in p.read_bytes().splitlines() if not _parses(line))


def _parses(line: bytes) -> bool:
    try:
        json.loads(line)
        return True
    except ValueError:
        return False


def run(d: Path, out: Path, workers: Workers, until=None) -> dict:
    """One render; ``until(out) -> 'kill' | 'fill' | None`` is asked every 0.1 s."""
    cmd = [sys.executable, str(common.REPO / "run_installation.py"), "render", str(d), "--out", str(out), *FLAGS]
    t0 = time.monotonic()
    err = tempfile.TemporaryFile()
    p = subprocess.Popen(cmd, cwd=common.REPO, stdout=subprocess.DEVNULL, stderr=err)
    workers.driver = p.pid
    did = None
    while p.poll() is None:
        time.sleep(0.1)
        if until and did is None:
            did = until(out)
            if did == "kill":
                p.send_signal(signal.SIGKILL)
            elif did == "fill":
                st = os.statvfs(out)
                with open(out.parent / "filler", "wb") as f:
                    try:
                        f.write(b"\0" * (st.f_bavail * st.f_frsize))
                    except OSError:
                        pass
    p.wait()
    err.seek(0)
    text = err.read().decode(errors="replace")
    return {"rc": p.returncode, "wall_s": round(time.monotonic() - t0, 1), "did": did, "stderr": text,
            "records": len(journal(out))}


def main():
    ap = common.parser(__doc__)
    ap.add_argument("--n", type=int, default=1000, help="files in the collection (default 1000)")
    args = ap.parse_args()
    n = 120 if args.quick else args.n
    tmp = Path(tempfile.mkdtemp(prefix="hostile-"))
    d, disk = tmp / "works", tmp / "disk"
    d.mkdir()
    disk.mkdir()
    good, bad = build(d, n)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", str(disk)], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"cannot mount a tmpfs for OUT ({r.stderr.strip()}): run as root")
    out = disk / "out"
    workers = Workers()
    runs = []
    try:
        at = lambda k, what: (lambda o: what if len(journal(o)) >= k else None)   # noqa: E731
        runs.append(run(d, out, workers, at(n // 7, "kill")))
        runs.append(run(d, out, workers, at(2 * n // 5, "kill")))
        runs.append(run(d, out, workers, at(3 * n // 5, "fill")))
        (disk / "filler").unlink(missing_ok=True)
        runs.append(run(d, out, workers))
        workers.stop()
        recs = journal(out)
        ok = [r_["rel"] for r_ in recs if r_["status"] == "ok"]
        rows = [json.loads(line) for line in (out / "catalogue.jsonl").read_text().splitlines()]
        last = runs[-1]["stderr"].splitlines()
        each = [line for line in last if not line.startswith("error:")]     # the closing line names the first again
        named = {b: sum(f" {b}:" in line for line in each) for b in bad}
        dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--dump-dom", (out / "index.html").as_uri()],
                             capture_output=True, text=True, timeout=120).stdout
        tmp_left = [p.name for p in out.rglob("*") if ".tmp-" in p.name]
        res = {
            "benchmark": "collection_hostile", "machine": common.machine(), "files": n, "good": len(good),
            "bad": len(bad), "flags": FLAGS,
            "runs": [{k: v for k, v in r_.items() if k != "stderr"} for r_ in runs],
            "last_run_error_lines": [line for line in last if line.startswith("error:")],
            "disk_full_line": [line for line in runs[2]["stderr"].splitlines() if line.startswith("error:")],
            "tracebacks": sum("Traceback" in r_["stderr"] for r_ in runs),
            "good_ok_once": sorted(ok) == sorted(good),
            "ok_records": len(ok), "distinct_ok": len(set(ok)),
            "good_not_ok": sorted(set(good) - set(ok)), "ok_not_good": sorted(set(ok) - set(good)),
            "torn_journal_lines": torn(out),
            "rows_ok": sum(r_["status"] == "ok" for r_ in rows), "rows": len(rows),
            "bad_named_once": all(v == 1 for v in named.values()), "bad_named": named,
            "temporary_files_left": tmp_left,
            "worker_peak_rss_mib": sorted(round(v / 2**20) for v in workers.peak.values()),
            "driver_peak_rss_mib": round(workers.driver_peak / 2**20),
            "gallery_articles_in_chromium": dom.count("<article"),
        }
    finally:
        subprocess.run(["umount", "-l", str(disk)])
        shutil.rmtree(tmp, ignore_errors=True)
    for k, v in res.items():
        if k not in ("machine", "bad_named"):
            print(f"{k}: {v}")
    res["passed"] = (res["good_ok_once"] and res["bad_named_once"] and not tmp_left and res["tracebacks"] == 0
                     and max(res["worker_peak_rss_mib"]) < 1024 and res["gallery_articles_in_chromium"] == len(good)
                     and [r_["did"] for r_ in runs] == ["kill", "kill", "fill", None] and len(res["disk_full_line"]) == 1)
    print("passed:", res["passed"])
    common.write_result("collection_hostile", res, args.out)


if __name__ == "__main__":
    main()
