"""User-facing errors: one line that names the file, port or option and what to do; and the one reader of the
TOML files a user gives (a patch, the kiosk's --config, an emotion map), whose failures are such lines."""
from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A mistake the user can fix. The CLI prints ``str(err)`` on one line, no traceback."""


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
