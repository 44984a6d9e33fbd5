"""The sender process imports nothing above midi/ (its own config, logging on the ground floor): what it
loads at start-up, and everything it could import later (lazy imports too, read from the code)."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
import import_layers as L  # noqa: E402

GROUND = {"installation", "installation.errors", "installation.logs"}


def reachable(start: str) -> set[str]:
    known = L.modules(REPO)
    seen, todo = set(), [start]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(L.imports(known[m], known))
    return seen


def test_the_sender_reaches_nothing_above_midi():
    above = {m for m in reachable("installation.midi.sender")
             if m not in GROUND and not m.startswith("installation.midi")}
    assert above == set()


def test_the_sender_starts_without_the_kiosk_the_command_line_or_numpy():
    code = ("import sys, installation.midi.sender\n"
            "print(' '.join(m for m in sys.modules if m.startswith('installation') or m == 'numpy'))")
    loaded = set(subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                                check=True).stdout.split())
    assert loaded and {m for m in loaded if m not in GROUND and not m.startswith("installation.midi")} == set()
