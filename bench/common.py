"""Shared helpers for the benchmarks: paths, the machine, summaries, result files, the JACK parts.

Every benchmark is a script run from the repository root (``python bench/NAME.py``);
each prints its figures and writes ``bench/results/NAME.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
for p in (str(REPO), str(REPO / "tests")):       # installation/, and tests/realtime_parts.py, tests/media.py
    if p not in sys.path:
        sys.path.insert(0, p)


# --- arguments ------------------------------------------------------------------------

def parser(doc: str, *, seconds: float | None = None) -> argparse.ArgumentParser:
    """The options every bench takes; with ``seconds``, --seconds too (how long it runs, that default)."""
    ap = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    if seconds is not None:
        ap.add_argument("--seconds", type=float, default=seconds, help=f"how long it runs (default {seconds:g})")
    ap.add_argument("--models", default=None, help="model folder (default: exported_models/, the shipped models)")
    ap.add_argument("--out", default=None, help="result JSON (default: bench/results/<name>.json)")
    ap.add_argument("--quick", action="store_true", help="fewer samples: check the script, not the machine")
    ap.add_argument("--decoder", default=None, choices=["gru", "transformer"], help="the decoder (default: the manifest's)")
    return ap


def parse(ap: argparse.ArgumentParser, **quick) -> argparse.Namespace:
    """The arguments; with --quick, the options named in ``quick`` take those smaller values (fewer samples)."""
    args = ap.parse_args()
    if args.quick:
        for name, value in quick.items():
            setattr(args, name, value)
    return args


def load_models(folder: str | None):
    from installation import manifest
    return manifest.load(folder)


def models_label(folder: str | None) -> str:
    from installation import manifest
    return str(Path(folder).resolve() if folder else manifest.DEFAULT_DIR)


# --- the machine ------------------------------------------------------------------------

def _first(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def busy_processes() -> list[str]:
    """Other processes burning CPU now (a rough check that the machine is idle): a 1 s sample of /proc."""
    def ticks():
        out = {}
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                f = (d / "stat").read_text().rsplit(")", 1)[1].split()
                out[int(d.name)] = int(f[11]) + int(f[12])
            except (OSError, IndexError, ValueError):
                pass
        return out
    a = ticks()
    time.sleep(1.0)
    b = ticks()
    hz = os.sysconf("SC_CLK_TCK")
    busy = []
    for pid, t in b.items():
        used = (t - a.get(pid, t)) / hz
        if used > 0.05 and pid != os.getpid():
            try:
                cmd = (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:100]
            except OSError:
                cmd = "?"
            busy.append(f"pid {pid} {used * 100:.0f}% {cmd}")
    return busy


def machine() -> dict:
    import onnxruntime
    mem_kb = _first("/proc/meminfo", "MemTotal")
    os_name = None
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    training = subprocess.run(["pgrep", "-f", "installation.training"], capture_output=True, text=True).stdout.split()
    return {
        "nproc": os.cpu_count(),
        "cpu": _first("/proc/cpuinfo", "model name"),
        "ram_gib": round(int(mem_kb.split()[0]) / 2**20, 1) if mem_kb else None,
        "os": os_name or platform.platform(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnxruntime": onnxruntime.__version__,
        "loadavg": os.getloadavg(),
        "training_running": bool(training),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def warn_if_busy() -> list[str]:
    busy = busy_processes()
    if busy:
        print("WARNING: the machine is not idle; figures taken now are not comparable:", file=sys.stderr)
        for b in busy:
            print("   ", b, file=sys.stderr)
    return busy


# --- summaries --------------------------------------------------------------------------

def summary(x, scale: float = 1.0) -> dict:
    """n, median, p90, p99, max, mean of a sample (times ``scale``, e.g. 1000 for ms)."""
    a = np.asarray(x, dtype=np.float64) * scale
    if a.size == 0:
        return {"n": 0}
    return {"n": int(a.size), "median": float(np.median(a)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max()), "min": float(a.min()),
            "mean": float(a.mean())}


def line(name: str, s: dict, unit: str = "ms") -> str:
    if not s.get("n"):
        return f"{name:<46} (no samples)"
    return (f"{name:<46} median {s['median']:8.3f}  p99 {s['p99']:8.3f}  max {s['max']:8.3f} {unit}"
            f"  (n={s['n']})")


def write_result(name: str, data: dict, out: str | None = None) -> Path:
    path = Path(out) if out else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    print(f"wrote {path}")
    return path


def _json_default(o):
    """numpy scalars and arrays as plain numbers and lists; anything else (Path) as its string."""
    return o.tolist() if hasattr(o, "tolist") else str(o)


# --- frames -----------------------------------------------------------------------------

def artworks() -> list[tuple[str, np.ndarray]]:
    """The bundled artworks as (file name, RGB uint8)."""
    from installation.image.capture import bundled_artworks, iter_images
    from installation.image.preprocess import load_rgb
    return [(p.name, load_rgb(p)) for p in iter_images([bundled_artworks()])]


# --- the receiver in its own process ------------------------------------------------------

class ReceiverProcess:
    """bench/receiver_proc.py in a process of its own: a JACK MIDI input that stamps every
    arrival with time.perf_counter (CLOCK_MONOTONIC, the same clock in every process).

    Its own process, so its JACK callback never waits for the GIL of a busy sender.
    Uses the JACK server named by JACK_DEFAULT_SERVER (set by realtime_parts.JackServer).
    """

    def __init__(self, client_name: str = "bench-rx"):
        self.client_name = client_name
        self.proc: subprocess.Popen | None = None
        self.port_name: str | None = None
        self.messages: list[tuple[float, tuple[int, ...]]] = []

    def __enter__(self) -> "ReceiverProcess":
        self.proc = subprocess.Popen([sys.executable, str(BENCH / "receiver_proc.py"), self.client_name],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline().strip()
        if not first.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError(f"receiver did not start: {first!r}")
        self.port_name = first[5:]
        return self

    def finish(self) -> list[tuple[float, tuple[int, ...]]]:
        """Stop receiving (after a short grace for messages in flight) and collect what arrived."""
        if self.proc is None:
            return self.messages
        out, _ = self.proc.communicate("quit\n", timeout=30)
        data = json.loads(out)
        self.messages = [(t, tuple(m)) for t, m in data]
        self.proc = None
        return self.messages

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()


def note_ons(messages) -> list:
    return [(t, m) for t, m in messages if len(m) == 3 and m[0] & 0xF0 == 0x90 and m[2] > 0]


def artwork_decoder(models, kind: str | None):
    """The bundled artworks' names, the controls the engine would ask for each (N, K), and the decoder of that
    kind opened as the live engine opens it (one thread)."""
    from installation.music.decoder import open_decoder

    frames = artworks()
    names = [name for name, _ in frames]
    ctrl, _ = artwork_controls(models, [img for _, img in frames], names)
    return names, ctrl, open_decoder(models, kind=kind, threads=1)


def artwork_controls(models, frames: list[np.ndarray], names: list[str], emb: np.ndarray | None = None):
    """The control vectors the engine would ask for each artwork (image emotion -> conductor), and the embeddings."""
    from installation.mood import emotion_map
    from installation.mood.conductor import Steering
    from installation.image.emotion import ImageEmotion
    from installation.image.encoder import ImageEncoder
    from installation.music.render import directions

    e, va = ImageEmotion(models, threads=1).read(ImageEncoder(models, threads=1), frames)
    emb = e if emb is None else emb
    ds = directions(va, names, Steering(), emotion_map.for_models(models.folder), models.key_templates, 0)
    return np.stack([d.controls for d in ds]), emb
