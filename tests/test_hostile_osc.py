"""The OSC input under hostile packets: real UDP, our checked parser, a live engine that keeps playing.

The two packets that froze the engine under python-osc: an address pattern of 3,000 ``*``
(a regular expression that backtracks for minutes holding the GIL) and a bundle whose
element size is negative (an endless loop). Both now end in one rejected packet."""
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

from hypothesis import given, settings, strategies as st

from installation.image.capture import bundled_artworks
from installation.patches.osc import OscIn
from installation.patches.osc_packet import MAX_PACKET, BadPacket, bundle, message, read_packet
from realtime_parts import MidiReceiver, count_note_ons

REPO = Path(__file__).resolve().parents[1]
OURS = frozenset({"/itm/input/valence", "/itm/input/arousal"})
STAR_PATTERN = message("/" + "*" * 3000 + "a", 1.0)[:3072 - 4] + b"\0\0\0\0"       # about 3 KB
NEGATIVE_BUNDLE = b"#bundle\0" + struct.pack(">Q", 1) + struct.pack(">i", -8) + b"\0" * 28  # 48 bytes


def test_known_messages_and_bundles_are_read():
    assert read_packet(message("/itm/input/valence", 0.5), OURS) == [("/itm/input/valence", 0.5)]
    assert read_packet(message("/itm/input/arousal", -1), OURS) == [("/itm/input/arousal", -1.0)]
    b = bundle(message("/itm/input/valence", 0.25), message("/other", 3), message("/itm/input/arousal", 0.75))
    assert read_packet(b, OURS) == [("/itm/input/valence", 0.25), ("/itm/input/arousal", 0.75)]
    assert read_packet(message("/itm/input/*", 0.5), OURS) == []          # patterns are not ours: ignored


def test_the_two_packets_that_froze_python_osc_are_rejected_at_once():
    assert len(NEGATIVE_BUNDLE) == 48
    t0 = time.perf_counter()
    for packet in (STAR_PATTERN, NEGATIVE_BUNDLE, bundle(bundle(bundle(message("/itm/input/valence", 1.0))))):
        try:
            assert read_packet(packet, OURS) == []
        except BadPacket:
            pass
    assert time.perf_counter() - t0 < 0.5


def test_rejections():
    for bad, why in [(b"", "multiple of 4"), (b"/abc", "NUL"), (b"x" * 8, "neither"),
                     (message("/itm/input/valence", 1.0)[:-4], "cut short"),
                     (b"\0" * (MAX_PACKET + 4), "more than"),
                     (NEGATIVE_BUNDLE, "element size -8"),
                     (message("/itm/input/valence") , "no argument")]:
        try:
            read_packet(bad, OURS)
        except BadPacket as exc:
            assert why in str(exc), (bad[:40], exc)
        else:
            raise AssertionError(f"accepted {bad[:40]!r}")
    nan = b"/itm/input/valence\0\0,f\0\0" + struct.pack(">f", float("nan"))
    try:
        read_packet(nan, OURS)
        raise AssertionError("a NaN was accepted")
    except BadPacket as exc:
        assert "not finite" in str(exc)


def _packets():
    ours = st.sampled_from(sorted(OURS) + ["/itm/input/*", "/x", "/" + "*" * 60])
    args = st.lists(st.one_of(st.integers(-2**31, 2**31 - 1), st.floats(width=32, allow_nan=True)), max_size=3)
    msgs = st.builds(lambda a, xs: message(a, *xs), ours, args)
    nested = st.recursive(msgs, lambda inner: st.lists(inner, max_size=4).map(lambda es: bundle(*es)), max_leaves=8)
    mutated = st.tuples(nested, st.integers(0, 200), st.binary(min_size=1, max_size=8)).map(
        lambda t: t[0][:t[1]] + t[2] + t[0][t[1] + len(t[2]):])
    return st.one_of(nested, mutated, st.binary(max_size=200))


@settings(max_examples=int(os.environ.get("OSC_FUZZ_CASES", "300")), deadline=None)
@given(_packets())
def test_fuzz_every_packet_is_read_or_rejected_in_one_line(packet):
    """Each packet is read or rejected (time per packet, median and p99: bench/bench_osc_fuzz.py)."""
    try:
        out = read_packet(packet, OURS)
    except BadPacket as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 200
    else:
        assert all(a in OURS and isinstance(v, float) and v == v for a, v in out)


def test_osc_in_survives_a_flood_and_still_hears_the_hand():
    got = []
    osc = OscIn(0, lambda axis, x: got.append((axis, x))).start()
    try:
        assert osc.host == "127.0.0.1"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(20):
                s.sendto(STAR_PATTERN, ("127.0.0.1", osc.port))
                s.sendto(NEGATIVE_BUNDLE, ("127.0.0.1", osc.port))
            s.sendto(b"\xff" * 9000, ("127.0.0.1", osc.port))
            time.sleep(1.0)                  # the bucket refills: the hand's message is not over the rate
            s.sendto(message("/itm/input/valence", 0.5), ("127.0.0.1", osc.port))
            deadline = time.monotonic() + 5
            while not got and time.monotonic() < deadline:
                time.sleep(0.02)
        assert got == [("valence", 0.5)]
        assert osc.counts["rejected"] >= 20 and osc.counts["accepted"] == 1
    finally:
        osc.close()


def test_live_engine_keeps_playing_and_stops_through_hostile_packets(jack_server, tmp_path):
    """play with an OSC input: hostile packets every 50 ms; notes keep coming and SIGTERM is obeyed at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    patch = tmp_path / "osc.toml"
    patch.write_text(f"[[layer]]\nchannel = 1\n[input]\nosc_port = {port}\nweight = 0.5\n")
    with MidiReceiver(client_name="osc-hostile-rx") as rx:
        proc = subprocess.Popen([sys.executable, str(REPO / "run_installation.py"), "play", "--midi-api", "jack",
                                 "--port", rx.port_name, "--patch", str(patch), "--source", str(bundled_artworks()),
                                 "--seed", "3"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            assert rx.wait_until(lambda m: count_note_ons(m) >= 3, timeout=60), "no music"
            n0 = count_note_ons(rx.received())
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                t_end = time.monotonic() + 6
                while time.monotonic() < t_end:
                    s.sendto(STAR_PATTERN, ("127.0.0.1", port))
                    s.sendto(NEGATIVE_BUNDLE, ("127.0.0.1", port))
                    time.sleep(0.05)
            assert count_note_ons(rx.received()) >= n0 + 5, "the music stopped under hostile OSC"
            t_term = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=20)
            took = time.monotonic() - t_term
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        time.sleep(0.3)
        assert proc.returncode == 0, out[-2000:]
        assert took < 5.0, f"SIGTERM took {took:.1f} s"
        assert rx.unmatched_note_ons() == [], "a note left sounding"
    assert "Traceback" not in out
    assert out.count("rejected") <= 3, out[-2000:]          # one log line per 10 s, not one per packet
