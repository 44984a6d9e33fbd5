"""Run every benchmark in turn (each in a process of its own), then print the results table.

    python bench/run_all.py                 # the shipped models (exported_models/)
    python bench/run_all.py --models DIR    # another model folder
    python bench/run_all.py --quick         # a short check of the scripts, not of the machine
    python bench/run_all.py --table-only    # just the table, from bench/results/*.json

Take figures on an otherwise idle machine: each script warns when other
processes are burning CPU, and records them in its JSON (busy_at_start).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

import common

SCRIPTS = [
    ("encoder", ["bench_encoder.py"]),
    ("decoder", ["bench_decoder.py"]),
    ("midi_timing", ["bench_midi_timing.py", "--process"]),
    ("scene_change", ["bench_scene_change.py"]),
    ("false_changes", ["bench_false_changes.py"]),
    ("startup", ["bench_startup.py"]),
    ("render", ["bench_render.py"]),
]


def load(name):
    p = common.RESULTS / f"{name}.json"
    return json.loads(p.read_text()) if p.is_file() else None


def f(x, d=2):
    return "-" if x is None else f"{x:.{d}f}"


def row(what, s, unit, aim="", d=2):
    return f"| {what} | {f(s.get('median'), d)} | {f(s.get('p99'), d)} | {f(s.get('max'), d)} | {unit} | {aim} |"


def table() -> str:
    out = ["| figure | median | p99 | max | unit | aim |", "|---|---:|---:|---:|---|---|"]
    r = load("encoder")
    if r:
        for run in r["runs"]:
            out.append(row(f"frame -> embedding (preprocess + encoder), {run['threads']} thread(s)",
                           run["total_ms"], "ms"))
            out.append(row(f"&nbsp;&nbsp;of which preprocess, {run['threads']} thread(s)", run["preprocess_ms"], "ms"))
    r = load("decoder")
    if r:
        out.append(row("decoder step + sampling (Performer.next), batch 1", r["step_ms"], "ms", d=3))
        n = r["needed"]
        out.append(f"| events generated / needed per second | {r['events_generated_per_s']:,.0f} / "
                   f"{n['mean_events_per_s']:.1f} (busiest 1 s: {n['busiest_1s_window']}) | | | events/s | "
                   f"headroom {r['headroom_mean']:.0f}x (busiest s: {r['headroom_busiest_second']:.0f}x) |")
    r = load("midi_timing")
    if r:
        aim = "p99 <= 1 ms: " + ("met" if r["aim"]["met"] else "NOT met")
        for i, run in enumerate(r["runs"]):
            s = run["sender_lateness_ms"]
            tag = f"run {i + 1}"
            out.append(f"| the sender's lateness (tick - due), {tag} | {f(s['p50'], 3)} | {f(s['p99'], 3)} | "
                       f"{f(s['max'], 3)} | ms | {aim if i == 0 else ''} |")
            out.append(row(f"receiver arrival - due, {tag}", run["arrival_error_ms"], "ms", "", 3))
        if r.get("process"):
            p = r["process"]
            out.append(f"| scheduler lateness, `play` process exit log line | {f(p['log_lateness_p50_ms'])} | "
                       f"{f(p['log_lateness_p99_ms'])} | - | ms | |")
            out.append(row("`play` process: arrival vs --record (first-aligned)", p["arrival_vs_record_ms"], "ms", d=3))
    r = load("scene_change")
    if r:
        aim = "median <= 300 ms, max <= 450 ms: " + ("met" if r["aim"]["met"] else "NOT met")
        out.append(row(f"scene switch -> change acted on ({r['detected']}/{r['switches']} switches)", r["to_acted_ms"], "ms", d=0))
        out.append(row("scene switch -> first new note due", r["to_first_note_due_ms"], "ms", d=0))
        out.append(row("scene switch -> first new note at the receiver", r["to_arrival_ms"], "ms", aim, d=0))
    r = load("false_changes")
    if r:
        out.append(f"| false scene changes, {r['seconds']:g} s of people moving in front of {r['picture']} | "
                   f"{r['false_changes']} | | | changes | none: {'met' if r['aim']['met'] else 'NOT met'} |")
    r = load("startup")
    if r:
        aim = "<= 3 s: " + ("met" if r["aim"]["met"] else "NOT met")
        out.append(row(f"process start -> first note-on at receiver ({len(r['runs'])} runs)", r["to_first_note_s"], "s", aim))
        out.append(row("peak RSS of the `play` process", r["peak_rss_mib"], "MiB", d=0))
        if "sigterm_to_all_sound_off_ms" in r:
            a = r["aim_shutdown"]
            out.append(row(f"SIGTERM -> last all-sound-off at the receiver ({r['notes_left_sounding']} notes left sounding)",
                           r["sigterm_to_all_sound_off_ms"], "ms", "<= 50 ms: " + ("met" if a["met"] else "NOT met")))
    r = load("render")
    if r:
        for x in r["render"]:
            out.append(f"| render.generate, {r['images']} images x {r['seconds_per_image']:g} s, "
                       f"{x.get('workers', 1)} worker(s) x {x['onnx_threads']} onnx thread(s) | {x['events_per_cpu_s']:,.0f} events/CPU-s; "
                       f"{x['music_s_per_cpu_s']:,.0f} music-s/CPU-s; {x['music_s_per_wall_s']:,.0f} music-s/wall-s | | | | |")
        for b in r["baseline"]:
            out.append(f"| baseline torch eager, batch 1, {b['torch_threads']} thread(s) | "
                       f"{b['events_per_cpu_s']:,.0f} events/CPU-s; {b['events_per_wall_s']:,.0f} events/wall-s | | | | |")
        sp = r["speedup"]
        out.append(f"| render speed-up over baseline | {sp['events_per_cpu_s']:.1f}x per CPU-s, "
                   f"{sp['events_per_wall_s']:.1f}x per wall-s | | | | >= 20x: {'met' if r['aim']['met'] else 'NOT met'} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--models", default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default=None, help="comma-separated names: " + ",".join(n for n, _ in SCRIPTS))
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args()
    if not args.table_only:
        only = set(args.only.split(",")) if args.only else None
        failed = []
        for name, cmd in SCRIPTS:
            if only and name not in only:
                continue
            full = [sys.executable, str(common.BENCH / cmd[0]), *cmd[1:]]
            if args.models:
                full += ["--models", args.models]
            if args.quick:
                full.append("--quick")
            print(f"=== {name}: {' '.join(full[1:])}", flush=True)
            if subprocess.run(full, cwd=common.REPO).returncode != 0:
                failed.append(name)
        if failed:
            print("FAILED:", ", ".join(failed))
    print()
    print(table())


if __name__ == "__main__":
    main()
