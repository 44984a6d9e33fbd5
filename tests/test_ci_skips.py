"""Under CI a missing tool, package or data set fails instead of skipping (tests/conftest.py), except the skips
ALLOWED_IN_CI names; without CI they stay skips. Run on a few small test files through a real pytest."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CASES = '''
import pytest
@pytest.mark.skipif(True, reason="jackd/jack_lsp are not installed")
def test_marked(): pass
def test_fixture_like(): pytest.skip("../shared/data is absent: data-dependent test skipped")
def test_allowed(): pytest.skip("aalink (optional, GPL) is not installed")
def test_runs(): pass
'''


def run(folder, ci):
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "tests")])
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", str(folder)],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=120)


def test_skips_fail_under_ci_except_the_allowed_ones(tmp_path):
    shutil.copy(REPO / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_cases.py").write_text(CASES)
    r = run(tmp_path, ci=True)
    assert r.returncode == 1, r.stdout[-3000:]
    assert "ERROR test_cases.py::test_marked - skipped under CI" in r.stdout, r.stdout[-3000:]
    assert "FAILED test_cases.py::test_fixture_like - skipped under CI" in r.stdout, r.stdout[-3000:]
    assert "SKIPPED [1] test_cases.py" in r.stdout and "aalink" in r.stdout, r.stdout[-3000:]
    assert "PASSED test_cases.py::test_runs" in r.stdout, r.stdout[-3000:]
    r = run(tmp_path, ci=False)
    assert r.returncode == 0 and "1 passed, 3 skipped" in r.stdout, r.stdout[-3000:]


def test_a_module_skipped_at_import_fails_under_ci(tmp_path):
    shutil.copy(REPO / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_module.py").write_text('import pytest\npytest.importorskip("no_such_package_itm", '
                                             'reason="no_such_package_itm is not installed")\n'
                                             'def test_x(): pass\n')
    r = run(tmp_path, ci=True)
    assert r.returncode != 0 and "skipped under CI" in r.stdout and "no_such_package_itm" in r.stdout, r.stdout
    assert run(tmp_path, ci=False).returncode in (0, 5)
