"""The parent's panic (midi_io.panic): how long the sends take, and whether every message arrives.

play and the kiosk's supervisor send it over a connection of their own when a sender died: 128 note-offs on
the channel, the pedals (CC 64-69) lifted on every channel, CC123 and CC120 on every channel, 256 messages.
A private JACK dummy server, an rtmidi receiver in this process; each round sends the panic over an open
MidiOut and waits until all of it has arrived.

    python bench/bench_panic.py [--rounds 200]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "tests")]
from installation.midi import midi_io  # noqa: E402
from installation.midi.scheduler import percentile  # noqa: E402
from realtime_parts import JackServer, MidiReceiver  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    args = ap.parse_args()
    with JackServer(name=f"itm-bench-panic-{os.getpid()}") as _, MidiReceiver("panic-rx") as rx:
        out = midi_io.MidiOut("jack", rx.port_name, client_name="bench-panic", watch=False)
        out.open()
        times, lost, n = [], 0, 0
        for _ in range(args.rounds):
            start = len(rx.received())
            t0 = time.perf_counter()
            midi_io.panic(out, 0)
            times.append((time.perf_counter() - t0) * 1e3)
            if not rx.wait_for(start + 256, 5):
                lost += 1
            n = len(rx.received()) - start
            time.sleep(0.02)
        out.close()
    times.sort()
    print(f"panic, {n} messages: sends took median {percentile(times, 50):.3f} ms, p99 {percentile(times, 99):.3f} ms "
          f"over {args.rounds} rounds; rounds with a message missing at the receiver: {lost}")


if __name__ == "__main__":
    main()
