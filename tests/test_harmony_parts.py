"""The harmony's small parts: the [chord_layer] and chord-input keys of a patch, the OSC list reader,
the chord layer's notes, and a held chord's settle and grace (a fake clock; the real-time path is in
test_harmony_live.py)."""
import pytest

from installation.errors import UserError
from installation.mood.harmony import HarmonyModel, HarmonyPlan, recognise
from installation.patches.inputs import ChordInput
from installation.patches.osc_packet import MAX_ARGS, BadPacket, message, read_packet
from installation.patches.patch import ChordLayer, parse_patch
from installation.patches.routing import ChordPlayer


def test_chord_layer_and_chord_input_keys_are_checked():
    p = parse_patch({"chord_layer": {"channel": 5, "style": "bass", "velocity": 70, "octave": 1, "program": 33},
                     "input": {"chord_port": "keys", "chord_channel": 2, "chord_release_s": 0.5}})
    assert p.chord_layer == ChordLayer(5, "bass", 70, 1, 33) and p.chord_layer.base == 24
    assert p.input.chord_port == "keys" and p.input.midi_port is None
    for bad, key in (({"chord_layer": {"style": "strings"}}, "chord_layer.style"),
                     ({"chord_layer": {"channel": 17}}, "chord_layer.channel"),
                     ({"chord_layer": {"octave": 9}}, "chord_layer.octave"),
                     ({"chord_layer": {"tempo": 1}}, "chord_layer.tempo"),
                     ({"input": {"chord_port": "k", "chord_release_s": -1}}, "input.chord_release_s"),
                     ({"osc": {"chords": "yes"}}, "osc.chords")):
        with pytest.raises(UserError) as e:
            parse_patch(bad)
        assert key in str(e.value) and "\n" not in str(e.value)


def test_osc_lists_are_read_whole_and_checked():
    hold, release = "/itm/chord/hold", "/itm/chord/release"
    lists = {hold, release}
    assert read_packet(message(hold, 2, 5, 9), set(), lists) == [(hold, (2.0, 5.0, 9.0))]
    assert read_packet(message(release), set(), lists) == [(release, ())]
    assert read_packet(message(hold, 2, 5, 9), set()) == []                # not served: ignored
    with pytest.raises(BadPacket):
        read_packet(message(hold, *range(MAX_ARGS + 1)), set(), lists)
    cut = message(hold, 2, 5, 9)[:-4]
    with pytest.raises(BadPacket):
        read_packet(cut, set(), lists)
    nan = message(hold, 2, 5, 9).replace(b"\x00\x00\x00\x09", b"\x7f\xc0\x00\x00").replace(b",iii", b",iif")
    with pytest.raises(BadPacket):
        read_packet(nan, set(), lists)


def test_every_chord_layer_note_on_gets_its_note_off():
    plan = HarmonyPlan(HarmonyModel.load(), 4, True, 0.4, seed=11)
    for style in ("pad", "bass"):
        player = ChordPlayer(ChordLayer(style=style), plan)
        msgs = []
        t = 0.0
        while t < 60.0:
            msgs += player.until(t, lambda m: m)
            t += 0.013
            if abs(t - 30.0) < 0.007:
                plan.hold(recognise({1, 5, 8}))
            if abs(t - 45.0) < 0.007:
                plan.hold(None)
        msgs += player.close_all(t)
        open_ = {}
        for _, (status, pitch, vel) in msgs:
            assert status & 0x0F == 1                                        # channel 2
            if status & 0xF0 == 0x90:
                assert pitch not in open_, "struck twice without a note-off"
                open_[pitch] = True
            else:
                assert open_.pop(pitch, None), "a note-off without its note-on"
        assert open_ == {}
        ons = [m for _, m in msgs if m[0] & 0xF0 == 0x90]
        assert len(ons) >= 20
        if style == "bass":
            assert all(36 <= m[1] < 48 for m in ons)


def test_a_held_chord_settles_and_lets_go_after_the_grace():
    now = [100.0]
    inp = ChordInput(release_s=0.3, clock=lambda: now[0])
    plan = HarmonyPlan(HarmonyModel.load(), 0, False, 0.0, seed=1)
    plan.chord_at(5.0)
    inp.plan = plan

    def at(t):
        now[0] = t
        inp.update(t)
    for n in (62, 65):                                          # two keys down, the third comes late
        inp.on_midi(([0x90, n, 80], 0.0))
    at(100.02)
    assert plan.held is None                                    # not settled yet
    inp.on_midi(([0x90, 69, 80], 0.0))
    at(100.1)
    assert plan.held is not None and plan.held.name == "Dm"
    for n in (62, 65, 69):
        inp.on_midi(([0x80, n, 0], 0.0))
    at(100.2)
    assert plan.held.name == "Dm"                               # within the grace
    at(100.6)
    assert plan.held is None
    inp.on_midi(([0x90, 200, 80], 0.0))                         # hostile bytes: ignored
    inp.on_midi(([0x90, 60], 0.0))
    at(101.0)
    assert plan.held is None


def test_render_writes_the_chord_layer_under_the_same_plan(tmp_path):
    import mido

    from installation.music import events as E
    from installation.patches.routing import route_events_to_midi
    model = HarmonyModel.load()
    patch = parse_patch({"chord_layer": {"channel": 4, "style": "pad", "velocity": 40}})
    seq = []
    for k in range(60):                                  # 30 s: a note every half second
        seq += [E.VELOCITY + 16, E.NOTE_ON + 60 + k % 12, E.TIME_SHIFT + 49, E.NOTE_OFF + 60 + k % 12]
    path = tmp_path / "x.mid"
    n = route_events_to_midi(seq, path, patch, plan=HarmonyPlan(model, 7, False, 0.2, seed=9))
    assert n == 60                                       # the performance's notes, counted as before
    t, sounding, sets, ons = 0.0, {}, [], 0
    for msg in mido.MidiFile(path):
        t += msg.time
        if msg.type not in ("note_on", "note_off") or msg.channel != 3:
            continue
        if msg.type == "note_on" and msg.velocity > 0:
            sounding[msg.note] = t
            ons += 1
        else:
            assert sounding.pop(msg.note, None) is not None
        pcs = frozenset(p % 12 for p in sounding)
        if sets and abs(sets[-1][0] - t) < 1e-6:
            sets[-1] = (t, pcs)                          # what sounds once every message at t is in
        else:
            sets.append((t, pcs))
    assert sounding == {} and ons >= 10
    merged = []
    for t, pcs in sets:
        if pcs and (not merged or merged[-1][1] != pcs):
            merged.append((t, pcs))
    sets = merged
    want = HarmonyPlan(model, 7, False, 0.2, seed=9).ahead(0.0, 29.9)
    assert [pcs for _, pcs in sets] == [c.pcs for _, c in want]
    assert all(abs(a - b) < 0.002 for (a, _), (b, _) in zip(sets, want))     # 1-ms ticks


def test_a_plan_nobody_drew_yet_answers():
    """OSC may read the plan before anything drew it (a patch with no chord layer)."""
    plan = HarmonyPlan(HarmonyModel.load(), 3, True, 0.0, seed=2)
    assert plan.chord_at(0.0) is not None and plan.chord_at(0.0) == plan.ahead(0.0, 1.0)[0][1]
    assert plan.next_change(0.0) > 0.0
