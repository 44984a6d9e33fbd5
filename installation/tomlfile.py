"""The TOML files a user writes (a patch, the kiosk's --config file, an emotion map): read, and checked key by key.
Every failure is one line that names the file and the key, before anything has started."""
from __future__ import annotations

import functools
import inspect
import math
from pathlib import Path
from typing import Any

from installation.errors import UserError, one_line


def load_toml(path: str | Path, where: str, error: type[Exception] = UserError) -> dict:
    """A TOML file's table, or ``error`` (one line that starts with ``where``) when it cannot be read or parsed."""
    try:                                     # Python 3.11+
        import tomllib
    except ModuleNotFoundError:              # pragma: no cover - Python 3.10
        import tomli as tomllib              # type: ignore[no-redef]
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{where}: no such file") from None
    except UnicodeDecodeError:
        raise error(f"{where}: not a UTF-8 text file") from None
    except OSError as exc:
        raise error(f"{where}: cannot read it ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, ValueError) as exc:   # ValueError: a number too long to read
        raise error(f"{where}: not valid TOML ({exc})") from None


def _optional(check):
    """A Checker method's opening, written once: a key the table lacks gives the method's ``default`` argument
    (unused in its body); a key it has goes to ``check`` as the value and its dotted name, for the error line."""
    signature = inspect.signature(check)

    @functools.wraps(check)
    def method(self, t: dict, key: str, section: str, *args, **kw):
        if key in t:
            return check(self, t[key], f"{section}.{key}" if section else key, *args, **kw)
        bound = signature.bind(self, None, key, *args, **kw)
        bound.apply_defaults()
        return bound.arguments["default"]
    return method


class Checker:
    """Type and range checks that fail with one line: '<where>: [section.]key: what is wrong', raised as
    ``error`` (UserError, or the caller's own kind of it)."""

    def __init__(self, where: str, error: type[Exception] = UserError):
        self.where, self.error = where, error

    def fail(self, key: str, what: str):
        raise self.error(one_line(f"{self.where}: {key}: {what}"))

    def table(self, t: Any, section: str, allowed: set[str]) -> dict:
        if not isinstance(t, dict):
            self.fail(section or "(top)", f"must be a table, not {typename(t)}")
        for k in t:
            if k not in allowed:
                self.fail(f"{section}.{k}" if section else k,
                          f"unknown key (allowed here: {', '.join(sorted(allowed))})")
        return t

    @_optional
    def string(self, v, k: str, choices=None, default=None) -> str | None:
        if not isinstance(v, str):
            self.fail(k, f"must be a string, not {typename(v)}")
        if "\x00" in v:
            self.fail(k, "contains a NUL character")
        if choices is not None and v not in choices:
            self.fail(k, f"{_short(v)} is not one of: {', '.join(choices)}")
        return v

    @_optional
    def boolean(self, v, k: str, default: bool) -> bool:
        if not isinstance(v, bool):
            self.fail(k, f"must be true or false, not {typename(v)}")
        return v

    @_optional
    def integer(self, v, k: str, lo: int, hi: int, default=None) -> int | None:
        if isinstance(v, bool) or not isinstance(v, int):
            self.fail(k, f"must be a whole number, not {typename(v)}")
        if not lo <= v <= hi:
            self.fail(k, f"{_short(v)} is out of range {lo}..{hi}")
        return v

    @_optional
    def number(self, v, k: str, lo: float, hi: float, default=None, lo_open: bool = False) -> float | None:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not math.isfinite(v)):
            self.fail(k, f"must be a finite number, not {_short(v)}")
        if not (lo < v if lo_open else lo <= v) or not v <= hi:
            self.fail(k, f"{_short(v)} is out of range {'(' if lo_open else ''}{lo:g}..{hi:g}")
        return float(v)

    @_optional
    def pair(self, v, k: str, lo: int, hi: int, default, ordered: bool = True):
        if (not isinstance(v, list) or len(v) != 2
                or any(isinstance(x, bool) or not isinstance(x, int) for x in v)):
            self.fail(k, f"must be two whole numbers [low, high], not {_short(repr(v))}")
        if not all(lo <= x <= hi for x in v):
            self.fail(k, f"{v} is out of range {lo}..{hi}")
        if ordered and v[0] > v[1]:
            self.fail(k, f"{v}: the low end is above the high end")
        return (v[0], v[1])


def _short(v) -> str:
    """A value for an error line: a number of 400 digits is shown by its length, a text quoted."""
    text = repr(v) if isinstance(v, str) else str(v)
    return text if len(text) <= 24 else f"a number of {len(text)} digits" if isinstance(v, int) else text[:21] + "..."


def typename(v) -> str:
    """A TOML value's kind, as an error line says it."""
    return {bool: "a boolean", int: "a whole number", float: "a number", str: "a string",
            list: "an array", dict: "a table"}.get(type(v), type(v).__name__)
