"""User-facing errors: one line that names the file, port or option and what to do."""


class UserError(Exception):
    """A mistake the user can fix. The CLI prints ``str(err)`` on one line, no traceback."""


def one_line(text: str) -> str:
    """An error message on one line, whatever the file held: line breaks and other controls escaped."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
