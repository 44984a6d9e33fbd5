"""The harmony plan's cost in the generator thread: plan.chord_at per event, the chord layer per event, a restart.

The generator asks the plan once per event at its frontier (music time advancing by the events'
time shifts: here 10 ms per event, about 3x the music's own event rate) and, with a [chord_layer], the
layer too (ChordPlayer.until, which asks the plan and pushes the chord changes). Each call is timed
alone with perf_counter_ns over ``--seconds`` of music, for each of the four quadrant corners' arousal;
the calls that draw a new chord are in the same sample. A restart (a scene change) is timed apart.
"""
from __future__ import annotations

import time

import common


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("--seconds", type=float, default=600.0, help="music time per arousal")
    args = ap.parse_args()
    from installation.mood.harmony import HarmonyModel, HarmonyPlan
    from installation.patches.patch import ChordLayer
    from installation.patches.routing import ChordPlayer

    busy = common.warn_if_busy()
    model = HarmonyModel.load(args.models)
    seconds = 60.0 if args.quick else args.seconds
    chord_at, layer, restart = [], [], []
    clock = time.perf_counter_ns
    for i, arousal in enumerate((-0.8, -0.3, 0.3, 0.8)):
        plan = HarmonyPlan(model, 9, i % 2 == 1, arousal, seed=i)
        player = ChordPlayer(ChordLayer(), HarmonyPlan(model, 9, i % 2 == 1, arousal, seed=100 + i))
        due = lambda m: m
        n = int(seconds * 100)
        for k in range(n):
            m = k * 0.01
            a = clock()
            plan.chord_at(m)
            b = clock()
            player.until(m, due)
            c = clock()
            chord_at.append((b - a) / 1e3)
            layer.append((c - b) / 1e3)
            if k % 2000 == 1999:
                a = clock()
                plan.restart(m, (k // 2000) % 12, False, arousal)
                restart.append((clock() - a) / 1e3)
    res = {"machine": common.machine(), "busy": busy, "seconds_per_arousal": seconds,
           "plan.chord_at": common.summary(chord_at), "ChordPlayer.until": common.summary(layer),
           "plan.restart": common.summary(restart)}
    for name in ("plan.chord_at", "ChordPlayer.until", "plan.restart"):
        print(common.line(name, res[name], "us"))
    common.write_result("bench_harmony", res, args.out)


if __name__ == "__main__":
    main()
