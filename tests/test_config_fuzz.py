"""Fuzzers for the configuration a user writes: patches and kiosk (or play) config files.

Each case is a TOML file on disk, read by the real loader, and knows beforehand how that must end
(tests/config_fuzz.py: patch_cases, kiosk_cases): it works, or it is refused with the one-line UserError
(which the command line prints as ``error: ...`` with exit status 2). A loader that accepts a bad value, or
refuses a good one, fails the test; so does a traceback, another exception or a message of several lines.
A few hundred cases here; bench/bench_fuzz.py runs thousands of unlabelled hostile files and reports the
figures (BENCHMARKS.md).
"""
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from tests.config_fuzz import check_kiosk, check_patch, kiosk_cases, patch_cases

REPO = Path(__file__).resolve().parents[1]
CASES = 300
SETTINGS = settings(max_examples=CASES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def case_file(tmp_path, monkeypatch, name: str, text: str) -> Path:
    """The case's TOML written to ``name`` in tmp_path, which becomes the working folder (relative paths in it)."""
    monkeypatch.chdir(tmp_path)
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@SETTINGS
@given(case=patch_cases())
def test_a_patch_file_loads_or_is_refused_in_one_line_as_expected(tmp_path, monkeypatch, case):
    text, expected = case
    assert check_patch(case_file(tmp_path, monkeypatch, "fuzz.toml", text)) == expected, text


@SETTINGS
@given(case=kiosk_cases())
def test_a_kiosk_or_play_config_file_builds_or_is_refused_in_one_line_as_expected(tmp_path, monkeypatch, case):
    text, expected = case
    p = case_file(tmp_path, monkeypatch, "kiosk.toml", text)
    assert check_kiosk(p) == expected, text
    assert check_kiosk(p, for_play=True) == expected, text


def test_the_cli_turns_the_worst_cases_into_one_line_and_status_2(tmp_path):
    """The cases that gave tracebacks once, through the real command line."""
    patch = tmp_path / "big.toml"
    patch.write_text("[shaping]\nvelocity_curve = " + "9" * 400 + "\n")
    newline = tmp_path / "newline.toml"
    newline.write_text('[clock]\nmin_bpm = ":}\\n2F"\n')          # found by bench/bench_fuzz.py: a 2-line error
    cases = [
        ["play", "--patch", str(patch), "--duration", "1"],
        ["play", "--patch", str(newline), "--duration", "1"],
        ["kiosk", "--config", str(_write(tmp_path, "f.toml", 'hours = ["25:00-\\n18:00"]\n')), "--duration", "1"],
        ["kiosk", "--config", str(_write(tmp_path, "a.toml", "log_max_mb = inf\n")), "--duration", "1"],
        ["kiosk", "--config", str(_write(tmp_path, "b.toml", 'log_file = "%s"\n' % tmp_path)), "--duration", "1"],
        ["kiosk", "--config", str(_write(tmp_path, "c.toml", 'log_file = "a\\u0000b"\n')), "--duration", "1"],
        ["kiosk", "--config", str(_write(tmp_path, "d.toml", "seed = " + "9" * 400 + "\n")), "--duration", "1"],
        ["kiosk", "--config", str(_write(tmp_path, "e.toml", "seed = " + "9" * 5000 + "\n")), "--duration", "1"],
    ]
    for args in cases:
        r = subprocess.run([sys.executable, str(REPO / "run_installation.py"), *args], capture_output=True,
                           text=True, timeout=60, stdin=subprocess.DEVNULL)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (args, r.stderr[-2000:])


def _write(folder, name, text):
    p = folder / name
    p.write_text(text)
    return p
