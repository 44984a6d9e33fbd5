"""The calls `play` makes that climb to a higher layer: how often its arguments go back up on their way down.

    python bench/call_layers.py [--seconds 3]

Runs `play` in this process for a few seconds on a bundled artwork, recording to a temporary MIDI file through
the sender process (with no MIDI system reachable it records only), with a profiler on every thread of this
process. It counts each distinct call
(caller function -> called function) between two modules of installation/ where the called module sits on a
higher layer than the caller (the layers of bench/import_layers.py). A callback handed down and called from
below counts too: it is still a trip back up. The sender is a child process, not traced (it imports nothing
above midi/, tests/test_layers.py checks that). Exits 0; it measures, it does not judge.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from import_layers import layer  # noqa: E402


def module_of(frame) -> str | None:
    name = frame.f_globals.get("__name__", "")
    if name == "__main__" or not name.startswith("installation"):
        return None
    return name


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0, help="how long play runs (default 3)")
    args = ap.parse_args(argv)
    edges: dict[tuple[str, str], int] = {}
    lock = threading.Lock()

    def profile(frame, event, arg):
        if event != "call":
            return
        callee = module_of(frame)
        caller = module_of(frame.f_back) if frame.f_back is not None else None
        if callee and caller and callee != caller and layer(callee) > layer(caller):
            key = (f"{caller}.{frame.f_back.f_code.co_name}", f"{callee}.{frame.f_code.co_name}")
            with lock:
                edges[key] = edges.get(key, 0) + 1

    from installation.cli import main as cli_main
    art = sorted((REPO / "installation" / "artworks").glob("*.jpg"))[0]
    with tempfile.TemporaryDirectory() as tmp:
        threading.setprofile(profile)
        sys.setprofile(profile)
        try:
            code = cli_main(["play", "--source", str(art), "--duration", str(args.seconds), "--seed", "0",
                             "--record", str(Path(tmp) / "out.mid"), "--log-level", "warning"])
        finally:
            sys.setprofile(None)
            threading.setprofile(None)
    print(f"play exited {code}; {len(edges)} distinct calls climb a layer:")
    for (a, b), n in sorted(edges.items(), key=lambda kv: (layer(kv[0][0]), kv[0])):
        print(f"  {a} ({layer(a)}) -> {b} ({layer(b)})  x{n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
