"""User-facing errors: one line that names the file, port or option and what to do."""


class UserError(Exception):
    """A mistake the user can fix. The CLI prints ``str(err)`` on one line, no traceback."""
