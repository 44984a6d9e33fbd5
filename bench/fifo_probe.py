"""A process that does nothing but sleep 1 ms at a time at SCHED_FIFO 10, and notes how late it wakes.

What the platform alone does to a real-time thread (the sender's scheduler thread is one): run beside
a benchmark, it says when the machine itself held a SCHED_FIFO thread back. Prints one JSON object on
stdin's EOF or after ``seconds``: the wake-up overshoot figures and the (start, end) perf_counter times
of every stall over 1 ms.

    python bench/fifo_probe.py SECONDS
"""
import json
import os
import select
import sys
import time

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
try:
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    fifo = True
except OSError:
    fifo = False
gaps, stalls = [], []
end = time.perf_counter() + seconds
n = 0
while time.perf_counter() < end:
    t0 = time.perf_counter()
    time.sleep(0.001)
    t1 = time.perf_counter()
    over = t1 - t0 - 0.001
    gaps.append(over)
    if over > 0.001:
        stalls.append((t0 + 0.001, t1))
    n += 1
    if n % 500 == 0 and select.select([sys.stdin], [], [], 0)[0]:
        if not sys.stdin.readline():
            break
gaps.sort()
k = len(gaps)
print(json.dumps({"fifo": fifo, "wakeups": k, "p50_ms": gaps[k // 2] * 1e3, "p99_ms": gaps[int(k * .99)] * 1e3,
                  "p999_ms": gaps[int(k * .999)] * 1e3, "max_ms": gaps[-1] * 1e3,
                  "over_1ms": len(stalls), "over_5ms": sum(1 for a, b in stalls if b - a > 0.005),
                  "stalls": stalls}))
