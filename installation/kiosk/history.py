"""The week at a glance, from the event log: ``GET /history?hours=N`` (JSON) and the console's inline SVG charts.

The event log (kiosk.eventlog) is one JSON line per state change, plus a ``minute`` line a minute (notes,
the sender's lateness p99, the mean mood). ``records()`` reads it back: the file and its rotated backups
(``--log-file``: across kiosk restarts), else the records kept in memory since this start. ``summary()`` turns
them into what staff ask: the state over time, each restart and its reason, notes and lateness per minute, the
mood over time and the pictures that played, the last log lines. The ``svg_*`` functions draw it with no script
and no font from outside; every picture name is escaped (file names are not trusted).
"""
from __future__ import annotations

import datetime as dt
import html
import json
import os
import time

MAX_READ_BYTES = 64 * 1024 * 1024     # at most this much of the log is read for one answer (newest first)
MAX_HOURS = 24 * 7
LOG_TAIL = 200
COLOURS = {"playing": "#2e8b57", "paused": "#6a7fdb", "closed": "#9a9a9a", "waiting-for-port": "#e0a030",
           "fault": "#c0392b", "starting": "#b5d3c2", "off": "#e8e8e8"}
NAMES = {"playing": "playing", "paused": "paused by staff", "closed": "closed", "waiting-for-port":
         "waiting for the MIDI port", "fault": "fault", "starting": "starting", "off": "kiosk not running"}
LEVEL_COLOURS = {"info": "#2b2b2b", "warning": "#9a5b00", "error": "#b00020", "critical": "#b00020"}


def _epoch(t) -> float | None:
    try:
        return dt.datetime.fromisoformat(str(t)).timestamp()
    except (ValueError, TypeError, OverflowError):
        return None


def records(events, since: float) -> list[dict]:
    """Event-log records at or after ``since`` (epoch seconds), oldest first. ``events``: the EventLog."""
    if not events.path:
        return [r for r in list(events.recent) if (_epoch(r.get("t")) or 0) >= since]
    files = [f"{events.path}.{i}" for i in range(events.backups, 0, -1)] + [events.path]
    chunks, budget = [], MAX_READ_BYTES
    for path in reversed(files):                 # newest first, until the window or the budget ends
        try:
            st = os.stat(path)
            if st.st_mtime < since:
                break
            with open(path, "rb") as f:
                if st.st_size > budget:
                    f.seek(st.st_size - budget)
                    f.readline()                 # a partial first line
                data = f.read(budget)
        except OSError:
            continue
        budget -= len(data)
        chunks.append(data)
        if budget <= 0:
            break
    out = []
    for data in reversed(chunks):
        for line in data.splitlines():
            try:
                rec = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(rec, dict) and (_epoch(rec.get("t")) or 0) >= since:
                out.append(rec)
    return out


def records_since(events, since: float) -> list[dict]:
    """The records the event log keeps in memory that are newer than ``since`` (epoch seconds), oldest first."""
    out = []
    for r in reversed(list(events.recent)):
        if (_epoch(r.get("t")) or 0) <= since:
            break
        out.append(r)
    return out[::-1]


def _category(state) -> str:
    if state in ("fatal", "recovering"):
        return "fault"
    return state if state in COLOURS else "starting"


def summary(recs: list[dict], now: float, hours: float) -> dict:
    """What the console shows for the last ``hours`` (epoch seconds; ``recs`` oldest first)."""
    t0 = now - hours * 3600
    segments: list[list] = []                    # [start, end, category]
    restarts, minutes, scenes, controls, tail = [], [], [], [], []
    last_t = None

    def close(at):
        if segments and segments[-1][1] is None:
            segments[-1][1] = at

    def begin(at, cat):
        if segments and segments[-1][1] is None and segments[-1][2] == cat:
            return
        close(at)
        segments.append([at, None, cat])

    for r in recs:
        t = _epoch(r.get("t"))
        if t is None:
            continue
        ev = r.get("event")
        if ev == "kiosk" and r.get("value") == "started":
            if last_t is not None and segments and segments[-1][1] is None:
                close(last_t)                    # the last one was killed: it ran until its last line
            if last_t is not None:
                segments.append([last_t, t, "off"])
            begin(t, "starting")
        elif ev == "kiosk" and r.get("value") == "stopped":
            close(t)
            segments.append([t, None, "off"])
        elif ev == "state":
            begin(t, _category(r.get("value")))
        elif ev == "program" and r.get("new") == "starting" and str(r.get("reason", "")).startswith("restart after"):
            restarts.append({"t": t, "program": r.get("program"), "reason": str(r.get("reason"))[:300]})
        elif ev == "program" and r.get("new") == "fatal":
            restarts.append({"t": t, "program": r.get("program"), "reason": "FATAL: " + str(r.get("reason"))[:300]})
        elif ev == "minute":
            n, secs = r.get("notes"), r.get("s")
            if isinstance(n, int) and isinstance(secs, (int, float)) and secs > 0 and abs(secs - 60) > 1:
                n = round(n * 60 / secs)         # a line for a shorter period (tests): per minute all the same
            minutes.append({"t": t, "s": secs if isinstance(secs, (int, float)) and 0 < secs <= 3600 else 60,
                            "notes": n, "lateness_p99_ms": r.get("lateness_p99_ms"),
                            "valence": r.get("valence"), "arousal": r.get("arousal")})
        elif ev == "scene":
            scenes.append({"t": t, "picture": r.get("picture"), "valence": r.get("valence"),
                           "arousal": r.get("arousal")})
        elif ev == "control":
            controls.append({"t": t, "action": r.get("action"), "value": r.get("value"), "client": r.get("client"),
                             "ok": r.get("ok")})
        if ev != "minute":
            tail.append(r)
        last_t = t
    close(now)
    shown = [{"start": max(a, t0), "end": b, "state": c} for a, b, c in segments if b > t0 and b > a]
    totals: dict[str, float] = {}
    for s in shown:
        totals[s["state"]] = totals.get(s["state"], 0.0) + s["end"] - s["start"]
    return {
        "hours": hours, "from": t0, "to": now,
        "states": shown, "totals_s": {k: round(v, 1) for k, v in totals.items()},
        "restarts": [x for x in restarts if x["t"] >= t0],
        "minutes": [x for x in minutes if x["t"] >= t0],
        "scenes": [x for x in scenes if x["t"] >= t0],
        "controls": [x for x in controls if x["t"] >= t0][-100:],
        "log": [{"t": r.get("t"), "level": r.get("level", "info"), "text": _line(r)} for r in tail[-LOG_TAIL:]],
    }


def _line(r: dict) -> str:
    fields = " ".join(f"{k}={v}" for k, v in r.items() if k not in ("t", "event", "level"))
    return f"{r.get('event')} {fields}"[:400]


def hours_arg(text: str | None, default: float = 24.0) -> float:
    """``?hours=`` checked: a number 1/60 to 168 (a week)."""
    if text is None or text == "":
        return default
    if len(text) > 8:
        raise ValueError("hours: at most 8 characters")
    h = float(text)
    if not 1 / 60 <= h <= MAX_HOURS:
        raise ValueError(f"hours: between 1/60 and {MAX_HOURS}")
    return h


# --- drawing -----------------------------------------------------------------------------------------------
W, PAD = 960, 44
E = html.escape


def _dur(s: float) -> str:
    s = int(round(s))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 60} min" if s >= 60 else f"{s} s"


def _clock(t: float, days: bool) -> str:
    return time.strftime("%a %H:%M" if days else "%H:%M", time.localtime(t))


def _axis(h: dict, y: float, height: float) -> str:
    """Time ticks under a chart: every 4 h for a day, every day for a week, every 10 min for an hour."""
    span = h["to"] - h["from"]
    step = next(st for lim, st in ((2 * 86400, 86400), (6 * 3600, 4 * 3600), (2 * 3600, 3600), (1800, 600),
                                   (600, 120), (0, 60)) if span > lim)
    start = (int(h["from"] // step) + 1) * step
    if step == 86400:                            # local midnights
        lt = time.localtime(h["from"])
        start = time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday + 1, 0, 0, 0, 0, 0, -1))
    out = []
    t = start
    while t < h["to"]:
        x = _x(h, t)
        out.append(f'<line x1="{x:.1f}" y1="{y - height:.1f}" x2="{x:.1f}" y2="{y + 4:.1f}" stroke="#ccc"/>'
                   f'<text x="{x:.1f}" y="{y + 16:.1f}" font-size="11" text-anchor="middle" fill="#555">'
                   f'{_clock(t, step == 86400)}</text>')
        t += step
    return "".join(out)


def _x(h: dict, t: float) -> float:
    return PAD + (t - h["from"]) / max(1e-9, h["to"] - h["from"]) * (W - 2 * PAD)


def state_text(h: dict) -> str:
    tot = h["totals_s"]
    parts = [f"{NAMES[k]} {_dur(v)}" for k, v in sorted(tot.items(), key=lambda kv: -kv[1]) if v >= 1]
    n = len(h["restarts"])
    why = "; ".join(f"{_clock(r['t'], h['hours'] > 24)} {r['program']}: {r['reason']}" for r in h["restarts"][-1:])
    return (f"Last {_span(h['hours'])}: " + (", ".join(parts) or "no record") + f". {n} restart{'s' * (n != 1)}"
            + (f" (latest: {why})" if n else "") + ".")


def _span(hours: float) -> str:
    if hours < 1:
        return f"{round(hours * 60)} minutes"
    return f"{hours / 24:g} days" if hours >= 48 else f"{hours:g} hours" if hours != 1 else "hour"


def svg_states(h: dict, ident: str) -> str:
    """A band of the state over time, with each restart marked (its reason in a tooltip)."""
    H = 74
    out = [f'<svg viewBox="0 0 {W} {H}" role="img" aria-labelledby="{ident}-t" class="chart">'
           f'<title id="{ident}-t">{E(state_text(h))}</title>']
    for s in h["states"]:
        x0, x1 = _x(h, s["start"]), _x(h, s["end"])
        out.append(f'<rect x="{x0:.1f}" y="14" width="{max(0.8, x1 - x0):.1f}" height="28" '
                   f'fill="{COLOURS[s["state"]]}"><title>{E(NAMES[s["state"]])}: {_clock(s["start"], True)}'
                   f' to {_clock(s["end"], True)}</title></rect>')
    for r in h["restarts"]:
        x = _x(h, r["t"])
        out.append(f'<path d="M{x:.1f},4 l-5,-0 l5,10 l5,-10 z" fill="#c0392b" class="restart">'
                   f'<title>{E(_clock(r["t"], True))} {E(str(r["program"]))} restarted: {E(r["reason"])}</title></path>')
    out.append(_axis(h, 54, 40))
    out.append("</svg>")
    return "".join(out)


def _thin(h: dict, pts: list, agg, px: float = 2.0) -> list:
    """(t, value) pairs, one per ``px`` pixels of the chart (``agg`` of those that share one): a week of
    minutes is 10,080 of them, and a chart 900 pixels wide."""
    out, col, vals, last_t = [], None, [], None
    for t, v in pts:
        c = int(_x(h, t) // px)
        if c != col and vals:
            out.append((last_t, agg(vals)))
            vals = []
        col, last_t = c, t
        vals.append(v)
    if vals:
        out.append((last_t, agg(vals)))
    return out


def _series(h: dict, key: str, colour: str, y0: float, height: float, top: float | None = None,
            lo: float = 0.0, agg=max) -> tuple[str, float]:
    pts = _thin(h, [(m["t"], m[key]) for m in h["minutes"] if isinstance(m.get(key), (int, float))], agg)
    if top is None:
        top = max([v for _, v in pts] + [1e-9])
    path, last_t = [], None
    for t, v in pts:
        x = _x(h, t)
        y = y0 - (min(max(v, lo), top) - lo) / (top - lo) * height
        gap = last_t is None or t - last_t > max(150, 3 * (h["to"] - h["from"]) / (W - 2 * PAD))   # kiosk off
        path.append(f'{"M" if gap else "L"}{x:.1f},{y:.1f}')
        last_t = t
    return (f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="1.6"/>' if path else ""), top


def minutes_text(h: dict) -> str:
    notes = [m["notes"] for m in h["minutes"] if isinstance(m.get("notes"), int)]
    p99 = [m["lateness_p99_ms"] for m in h["minutes"] if isinstance(m.get("lateness_p99_ms"), (int, float))]
    return (f"Notes per minute over the last {_span(h['hours'])}: " +
            (f"median {sorted(notes)[len(notes) // 2]}, highest {max(notes)}, {notes.count(0)} silent minutes"
             if notes else "no minute recorded yet") + ". The sender's lateness p99 per minute: " +
            (f"median {sorted(p99)[len(p99) // 2]:.2f} ms, worst {max(p99):.2f} ms." if p99 else "none recorded."))


def mood_text(h: dict) -> str:
    v = [m["valence"] for m in h["minutes"] if isinstance(m.get("valence"), (int, float))]
    a = [m["arousal"] for m in h["minutes"] if isinstance(m.get("arousal"), (int, float))]
    pics = [s["picture"] for s in h["scenes"] if s.get("picture")]
    return (f"Mood over the last {_span(h['hours'])}: " +
            (f"valence {min(v):.2f} to {max(v):.2f}, arousal {min(a):.2f} to {max(a):.2f}. " if v and a
             else "no minute recorded yet. ") + f"{len(pics)} scene{'s' * (len(pics) != 1)}.")


def svg_minutes(h: dict, ident: str) -> str:
    """Notes per minute (bars) and the sender's lateness p99 per minute (a line, its own scale)."""
    H, y0, ht = 170, 140, 120
    notes = [m["notes"] for m in h["minutes"] if isinstance(m.get("notes"), int)]
    text = minutes_text(h)
    top = max(notes + [1])
    scale = (W - 2 * PAD) / max(1.0, h["to"] - h["from"])
    out = [f'<svg viewBox="0 0 {W} {H}" role="img" aria-labelledby="{ident}-t" class="chart">'
           f'<title id="{ident}-t">{E(text)}</title>',
           f'<line x1="{PAD}" y1="{y0}" x2="{W - PAD}" y2="{y0}" stroke="#999"/>',
           f'<text x="{PAD}" y="12" font-size="11" fill="#2e6da4">notes/min (max {top})</text>']
    secs = {m["t"]: m["s"] for m in h["minutes"]}
    for t, n in _thin(h, [(m["t"], m["notes"]) for m in h["minutes"] if isinstance(m.get("notes"), int)], max):
        if n > 0:
            bh, bar = n / top * ht, max(2.0, secs[t] * scale)      # each line covers the seconds before it
            out.append(f'<rect x="{_x(h, t) - bar:.1f}" y="{y0 - bh:.1f}" width="{bar:.1f}" '
                       f'height="{bh:.1f}" fill="#7fb2e5"/>')
    line, ptop = _series(h, "lateness_p99_ms", "#c0392b", y0, ht)
    out.append(line)
    out.append(f'<text x="{W - PAD}" y="12" font-size="11" text-anchor="end" fill="#c0392b">'
               f'lateness p99 (max {ptop:.2f} ms)</text>')
    out.append(_axis(h, y0, ht))
    out.append("</svg>")
    return "".join(out)


def svg_mood(h: dict, ident: str) -> str:
    """Valence and arousal (-1..1) per minute, and a tick for each picture that played (its name on hover)."""
    H, y0, ht = 170, 130, 100
    text = mood_text(h)
    out = [f'<svg viewBox="0 0 {W} {H}" role="img" aria-labelledby="{ident}-t" class="chart">'
           f'<title id="{ident}-t">{E(text)}</title>',
           f'<line x1="{PAD}" y1="{y0 - ht / 2}" x2="{W - PAD}" y2="{y0 - ht / 2}" stroke="#bbb" stroke-dasharray="4 3"/>',
           f'<text x="{PAD}" y="12" font-size="11" fill="#d35400">valence</text>'
           f'<text x="{PAD + 60}" y="12" font-size="11" fill="#8e44ad">arousal</text>'
           f'<text x="{PAD - 4}" y="{y0 - ht + 4}" font-size="10" text-anchor="end" fill="#777">1</text>'
           f'<text x="{PAD - 4}" y="{y0 + 4}" font-size="10" text-anchor="end" fill="#777">-1</text>']
    for key, colour in (("valence", "#d35400"), ("arousal", "#8e44ad")):
        out.append(_series(h, key, colour, y0, ht, top=1.0, lo=-1.0, agg=lambda v: sum(v) / len(v))[0])
    for s in h["scenes"]:
        x = _x(h, s["t"])
        out.append(f'<line x1="{x:.1f}" y1="{y0 + 2}" x2="{x:.1f}" y2="{y0 + 10}" stroke="#333" stroke-width="2">'
                   f'<title>{E(_clock(s["t"], True))}: {E(str(s.get("picture")))}</title></line>')
    out.append(_axis(h, y0 + 14, ht + 14))
    out.append("</svg>")
    return "".join(out)


def legend() -> str:
    return "".join(f'<span class="key"><svg width="14" height="14" aria-hidden="true"><rect width="14" height="14" '
                   f'fill="{COLOURS[k]}"/></svg> {E(NAMES[k])}</span>' for k in COLOURS)


def charts(day: dict, week: dict) -> str:
    """The console's charts as one HTML fragment (inline SVG; each chart's text summary beside it). ``day``: the
    detail window (24 hours unless the page asks ``?hours=``), ``week``: the last 7 days."""
    pics = list(dict.fromkeys(str(s["picture"]) for s in day["scenes"] if s.get("picture")))
    rows = "".join(f'<li style="color:{LEVEL_COLOURS.get(str(r["level"]), "#2b2b2b")}" class="lvl-{E(str(r["level"]))}">'
                   f'<time>{E(str(r["t"])[:19].replace("T", " "))}</time> {E(str(r["level"]).upper()) + " " if r["level"] != "info" else ""}'
                   f'{E(r["text"])}</li>' for r in reversed(day["log"]))
    rlist = "".join(f'<li>{E(_clock(r["t"], True))}: {E(str(r["program"]))}: {E(r["reason"])}</li>'
                    for r in reversed(day["restarts"][-20:])) or "<li>none</li>"
    return (f'<section aria-labelledby="h-state"><h2 id="h-state">State</h2><p class="legend">{legend()}</p>'
            f'<figure><figcaption>{E(state_text(day))}</figcaption>{svg_states(day, "day")}</figure>'
            f'<figure><figcaption>{E(state_text(week))}</figcaption>{svg_states(week, "week")}</figure>'
            f'<h3>Restarts (last {E(_span(day["hours"]))})</h3><ul class="restarts">{rlist}</ul></section>'
            f'<section aria-labelledby="h-notes"><h2 id="h-notes">Notes and timing</h2>'
            f'<figure><figcaption>{E(minutes_text(day))}</figcaption>{svg_minutes(day, "minutes")}</figure></section>'
            f'<section aria-labelledby="h-mood"><h2 id="h-mood">Mood and pictures</h2>'
            f'<figure><figcaption>{E(mood_text(day))}</figcaption>{svg_mood(day, "mood")}</figure>'
            f'<p>Pictures played (last {E(_span(day["hours"]))}): {E(", ".join(pics[-30:])) or "none"}</p></section>'
            f'<section aria-labelledby="h-log"><h2 id="h-log">Log (last {len(day["log"])} lines, newest first)</h2>'
            f'<ol class="log" reversed>{rows}</ol></section>')
