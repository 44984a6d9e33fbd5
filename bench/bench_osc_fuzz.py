"""The OSC packet check under fuzzing: the time to read or reject one hostile packet (moved here from
tests/test_hostile_osc.py, which asserts only the behaviour: read, or rejected in one line).

The packets are tests/test_hostile_osc.py's own strategy (our addresses and patterns, nested bundles,
mutated and random bytes). Prints the outcome counts and the time per packet (median, p99, max), and writes
bench/results/bench_osc_fuzz.json.

    OMP_NUM_THREADS=1 nice -n 10 python bench/bench_osc_fuzz.py --cases 2000
"""
from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import line, machine, parser, summary, write_result   # noqa: E402  (also puts the repo on sys.path)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from hypothesis import HealthCheck, given, settings               # noqa: E402

from installation.patches.osc_packet import BadPacket, read_packet   # noqa: E402
from tests.test_hostile_osc import OURS, _packets                   # noqa: E402


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--cases", type=int, default=2000, help="packets (default 2000)")
    args = ap.parse_args()
    cases = 50 if args.quick else args.cases
    outcomes: Counter = Counter()
    times: list[float] = []

    @settings(max_examples=cases, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(_packets())
    def one(packet):
        t = time.perf_counter()
        try:
            read_packet(packet, OURS)
            outcomes["read"] += 1
        except BadPacket:
            outcomes["rejected"] += 1
        times.append(time.perf_counter() - t)

    one()
    s = summary(times, 1000.0)
    print(f"{sum(outcomes.values())} packets: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    print(line("time per packet", s, "ms"))
    write_result("bench_osc_fuzz", {"machine": machine(), "outcomes": dict(outcomes), "ms_per_packet": s}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
