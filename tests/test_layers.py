"""The layers (bench/import_layers.py): imports go down, in no cycle, and the few that climb say why at the import.
The sender process imports nothing above midi/ (its own config, logging on the ground floor): what it
loads at start-up, and everything it could import later (lazy imports too, read from the code)."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
import import_layers as L  # noqa: E402

GROUND = {"installation", "installation.errors", "installation.logs"}


def explained(known: dict, importer: str, imported: str) -> bool:
    """Whether an import of ``imported`` in ``importer`` carries a comment, on its line or the line above."""
    path = known[importer]
    lines = path.read_text(encoding="utf-8").splitlines()
    return any("# " in lines[n - 1] or (n > 1 and lines[n - 2].lstrip().startswith("#"))
               for n in L.import_lines(path, known)[imported])


def test_no_cycles_and_at_most_three_climbs_each_saying_why():
    known, up, found = L.measure(REPO)
    assert len(up) <= 3, up
    assert [(m, d) for m, d in up if not explained(known, m, d)] == []
    assert found == []


def test_the_measure_finds_a_climb_a_cycle_and_a_reason(tmp_path):
    pkg = tmp_path / "installation"
    (pkg / "music").mkdir(parents=True)
    for name, text in {"__init__.py": "", "manifest.py": "from installation.music import a\n",
                       "music/__init__.py": "", "music/a.py": "def f():\n    from installation.music import b\n",
                       "music/b.py": "# b needs a: a test of the measure\nfrom installation.music import a\n"}.items():
        (pkg / name).write_text(text)
    known, up, found = L.measure(tmp_path)
    assert up == [("installation.manifest", "installation.music.a")]
    assert found == [["installation.music.a", "installation.music.b"]]
    assert not explained(known, "installation.manifest", "installation.music.a")
    assert explained(known, "installation.music.b", "installation.music.a")


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
