"""Opening hours: local-time ranges like ``10:00-18:00`` (several allowed; one may cross midnight)."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*-\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")


def _seconds(h: str, m: str, s: str | None) -> int:
    h_, m_, s_ = int(h), int(m), int(s or 0)
    if not (0 <= h_ <= 24 and 0 <= m_ < 60 and 0 <= s_ < 60) or (h_ == 24 and (m_ or s_)):
        raise ValueError("hours are 00:00 to 24:00")
    return h_ * 3600 + m_ * 60 + s_


@dataclass(frozen=True)
class OpeningHours:
    """Ranges of seconds since local midnight, [start, end); end < start crosses midnight. No ranges: always open."""
    ranges: tuple[tuple[int, int], ...] = ()

    @classmethod
    def parse(cls, specs) -> "OpeningHours":
        """From strings like '10:00-18:00' or '10:00-12:00,14:00-18:00' (seconds allowed: '10:00:30-...').
        ValueError names the bad range."""
        ranges = []
        for spec in specs:
            for part in str(spec).split(","):
                if not part.strip():
                    continue
                m = _RANGE.match(part)
                if not m:
                    raise ValueError(f"{part.strip()!r} is not a range like 10:00-18:00")
                try:
                    a, b = _seconds(*m.group(1, 2, 3)), _seconds(*m.group(4, 5, 6))
                except ValueError as exc:
                    raise ValueError(f"{part.strip()!r}: {exc}") from None
                if a == b:
                    raise ValueError(f"{part.strip()!r} is empty (it opens and closes at the same time)")
                ranges.append((a, b))
        return cls(tuple(ranges))

    def is_open(self, when: dt.datetime) -> bool:
        """True if ``when`` (local time) falls in a range, or there are no ranges."""
        if not self.ranges:
            return True
        t = when.hour * 3600 + when.minute * 60 + when.second + when.microsecond / 1e6
        for a, b in self.ranges:
            if (a <= t < b) if a < b else (t >= a or t < b):
                return True
        return False

    def next_open(self, when: dt.datetime) -> dt.datetime | None:
        """The next opening after ``when`` (local time): the soonest start of a range; None with no ranges."""
        if not self.ranges:
            return None
        midnight = when.replace(hour=0, minute=0, second=0, microsecond=0)
        starts = (midnight + dt.timedelta(days=d, seconds=a) for d in (0, 1) for a, _ in self.ranges)
        return min(t for t in starts if t > when)

    def describe(self) -> str:
        if not self.ranges:
            return "always open"
        f = lambda s: f"{s // 3600:02d}:{s % 3600 // 60:02d}" + (f":{s % 60:02d}" if s % 60 else "")  # noqa: E731
        return ", ".join(f"{f(a)}-{f(b)}" for a, b in self.ranges)
