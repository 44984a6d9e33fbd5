"""Configuration fuzzers at scale: patches and kiosk/play config files.

Each case is a TOML file written to disk and read by the real loader, exactly as tests/test_config_fuzz.py
does with a few hundred cases: it must work, or be refused with the one-line UserError (which the command
line prints as ``error: ...``, exit status 2). Any other exception, or a message of several lines, is
counted as a failure and its first example is printed. Prints the counts, the outcome shares and the time
per case (median and p99), and writes bench/results/bench_fuzz.json.

    OMP_NUM_THREADS=1 nice -n 10 python bench/bench_fuzz.py --cases 2000
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, parser, summary, line, write_result   # noqa: E402  (also puts the repo on sys.path)

from hypothesis import HealthCheck, given, settings          # noqa: E402

from tests.config_fuzz import check_kiosk, check_patch, kiosk_documents, patch_documents   # noqa: E402
from installation.kiosk import config as C                    # noqa: E402


def run(name: str, strategy, check, cases: int, folder: Path) -> dict:
    outcomes: Counter = Counter()
    times: list[float] = []
    failures: list[str] = []

    @settings(max_examples=cases, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def case(text):
        path = folder / f"{name}.toml"
        path.write_text(text, encoding="utf-8")
        t = time.perf_counter()
        try:
            outcomes[check(path)] += 1
        except Exception:                                   # anything but the one-line UserError
            outcomes["failure"] += 1
            if len(failures) < 3:
                failures.append(text[:400] + "\n" + traceback.format_exc(limit=4))
        times.append(time.perf_counter() - t)

    case()
    n = sum(outcomes.values())
    result = {"cases": n, "outcomes": dict(outcomes), "seconds_per_case": summary(times, 1.0),
              "failures": failures}
    print(f"{name}: {n} cases: " + ", ".join(f"{k} {v} ({100 * v / n:.1f}%)" for k, v in sorted(outcomes.items())))
    print(line(f"{name}: time per case", summary(times, 1000.0), "ms"))
    for f in failures:
        print("FAILURE:\n" + f)
    return result


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--cases", type=int, default=2000, help="cases per fuzzer (default 2000)")
    args = ap.parse_args()
    cases = 50 if args.quick else args.cases
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.chdir(folder)                                     # relative paths in the cases land here
        results = {
            "patch": run("patch", patch_documents(), check_patch, cases, folder),
            "kiosk_config": run("kiosk_config", kiosk_documents(C.field_names()), check_kiosk, cases, folder),
            "play_config": run("play_config", kiosk_documents(C.field_names()),
                               lambda p: check_kiosk(p, for_play=True), cases, folder),
        }
    write_result("bench_fuzz", {"machine": machine(), "results": results}, args.out)
    return 1 if any(r["outcomes"].get("failure") for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
