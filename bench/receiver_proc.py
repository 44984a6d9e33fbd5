"""A MIDI receiver in its own process (used by the benchmarks, see common.ReceiverProcess).

Prints ``PORT <full port name>`` once its JACK input is open; on a line on stdin
(or EOF) it waits 0.3 s for messages in flight, closes, and prints a JSON list of
[perf_counter at arrival, [bytes]].
"""
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from realtime_parts import MidiReceiver  # noqa: E402

rx = MidiReceiver(sys.argv[1] if len(sys.argv) > 1 else "bench-rx").open()
print("PORT", rx.port_name, flush=True)
sys.stdin.readline()
time.sleep(0.3)
rx.close()
print(json.dumps([[t, list(m)] for t, m in rx.messages]))
