"""The critic's cost on one core: a decoder step over all candidates, the choice, and the live call's latency.

- Batched step: ``decoder.step`` + mask + sampling for the K candidates of one voice in one
  ONNX call (guided: 2K rows), timed step by step: what each event of a phrase costs.
- Choice: scoring K candidate phrases (``critic.choose``) once a phrase.
- Performer.next with the critic, call by call, as the live generator calls it: most calls pop
  an event of the chosen phrase; one call a phrase samples K candidates of the whole phrase, so
  its latency (not the step's) is what the look-ahead (0.75 s) must hold. The models' harmony plan
  asks the chord at each event's music time, as live (its lookup, the chord written into every
  candidate's controls, and the pedal lifted at a change are all in the timed call).
- The same Performer.next without the critic (K = 1), for comparison.
"""
from __future__ import annotations

import time

import numpy as np

import common


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("-n", type=int, default=4000, help="timed steps")
    ap.add_argument("--candidates", type=int, default=None, help="default: the critic's")
    args = common.parse(ap, n=400)
    n = args.n
    busy = common.warn_if_busy()

    from installation.engine import open_harmony
    from installation.mood.controls import chord_code
    from installation.music import events as E
    from installation.music.critic import NoteClock, choose
    from installation.music.decoder import Performer
    from installation.music.legality import NoteState
    from installation.music.sampling import sample

    models = common.load_models(args.models)
    _, ctrl, dec = common.artwork_decoder(models, args.decoder)
    critic = dec.critic
    if critic is None:
        raise SystemExit("these models have no critic (critic.json)")
    k = args.candidates or critic.candidates
    P = critic.phrase_events

    # 1. one step over K candidate rows
    rng = np.random.default_rng(0)
    cond = np.repeat(ctrl[:1], k, 0).astype(np.float32)
    state, last, notes = dec.initial(cond), np.full(k, 256, np.int64), NoteState(k)
    steps = []
    phrases = np.empty((k, P), np.int64)
    for i in range(n + 50):
        t0 = time.perf_counter()
        logits, state = dec.step(last, state, cond)
        last = sample(notes.mask(logits), None, 1.0, 0.95, u=rng.random(k))
        notes.update(last)
        t1 = time.perf_counter()
        phrases[:, i % P] = last
        if i >= 50:
            steps.append(t1 - t0)
    # 2. the choice
    chooses = []
    for _ in range(max(20, n // P)):
        t0 = time.perf_counter()
        choose(critic, phrases, NoteClock(k), cond, k)
        chooses.append(time.perf_counter() - t0)
    # 3. Performer.next with and without the critic, call by call
    calls = {}
    for label, cand in (("critic", k), ("no critic", 1)):
        t = []
        for j, c in enumerate(ctrl):
            p = Performer(dec, seed=j, candidates=cand)
            p.prime(dec.initial(c[None]))
            plan, m = open_harmony(models.folder, seed=j), 0.0
            chord_at = None
            if plan is not None:
                plan.restart(0.0, j % 12, bool(j % 2), 0.0)
                chord_at = lambda t, plan=plan: chord_code(plan.chord_at(t).pcs)      # noqa: E731
            for i in range(n // len(ctrl) + P):
                t0 = time.perf_counter()
                ev = p.next(c, chord_at=chord_at, now=m)
                if i >= P:                      # past the event-by-event start of a scene
                    t.append(time.perf_counter() - t0)
                if E.TIME_SHIFT <= ev < E.TIME_SHIFT + E.NUM_TIME_SHIFTS:
                    m += (ev - E.TIME_SHIFT + 1) / E.STEPS_PER_SECOND
        calls[label] = t
    st, ch = common.summary(steps, 1e3), common.summary(chooses, 1e3)
    crit, plain = common.summary(calls["critic"], 1e3), common.summary(calls["no critic"], 1e3)
    phrase_ms = st["mean"] * P + ch["mean"]
    res = {"benchmark": "critic", "machine": common.machine(), "busy_at_start": busy,
           "models": common.models_label(args.models), "decoder": dec.kind, "candidates": k, "phrase_events": P,
           "guided": hasattr(dec, "weight"), "plan": True, "onnx_threads": 1,
           "step_over_candidates_ms": st, "choose_ms": ch, "performer_next_critic_ms": crit,
           "performer_next_plain_ms": plain, "phrase_call_ms_estimate": phrase_ms,
           "per_event_amortised_ms": phrase_ms / P}
    print(f"decoder: {dec.kind}, {k} candidates x {P}-event phrases, 1 onnxruntime thread")
    print(common.line(f"step over {k} candidates (+ mask, sampling)", st))
    print(common.line("critic choice, once a phrase", ch))
    print(common.line("Performer.next with the critic (per call)", crit))
    print(common.line("Performer.next without the critic (per call)", plain))
    print(f"one phrase call: about {phrase_ms:.1f} ms ({phrase_ms / P:.3f} ms per event, amortised)")
    common.write_result("critic", res, args.out)


if __name__ == "__main__":
    main()
