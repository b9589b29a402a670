"""Exceptions that the command-line layer turns into one-line messages and exit codes.

* :class:`ConfigError` — an option has an invalid value (exit status 2, a usage error).
* :class:`NrmkitRuntimeError` and subclasses — a valid run failed (exit status 1).
"""

from __future__ import annotations


class ConfigError(ValueError):
    """Invalid option value, raised while validating a configuration.

    Args:
        option: the option name as a user types it, e.g. ``"--gmin"``.
        reason: why the value is refused, in a few words.
    """

    def __init__(self, option: str, reason: str):
        self.option = option
        self.reason = reason
        super().__init__(f"{option}: {reason}")


class NrmkitRuntimeError(RuntimeError):
    """A run failed for a reason other than bad options (exit status 1)."""


class DivergenceError(NrmkitRuntimeError):
    """A simulation produced non-finite values (NaN or inf).

    Attributes:
        batch_indices: the batch indices of the networks that diverged, so that a caller
            can name their parameters.
    """

    def __init__(self, message: str, batch_indices: list[tuple[int, ...]] | None = None):
        super().__init__(message)
        self.batch_indices = batch_indices or []


class DataError(NrmkitRuntimeError):
    """Input data is missing or malformed."""


class WriteError(NrmkitRuntimeError):
    """The operating system refused a write (read-only file system, disk full, permissions).

    Attributes:
        path: the file or folder that could not be written.
        reason: the system's reason, e.g. ``"No space left on device"``.
    """

    def __init__(self, path: object, error: OSError, *, action: str = "write"):
        self.path = path
        self.reason = error.strerror or str(error)
        super().__init__(f"cannot {action} {path}: {self.reason}")
