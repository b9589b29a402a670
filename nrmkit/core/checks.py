"""Option checks of the configurations: a refused value is a
:class:`~nrmkit.core.errors.ConfigError` naming the option (exit status 2 on the command line)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from nrmkit.core.errors import ConfigError


def check(condition: bool, option_name: str, reason: str) -> None:
    """Raise :class:`ConfigError` for ``option_name`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(option_name, reason)


def check_finite(value: float, option_name: str) -> None:
    check(math.isfinite(value), option_name, f"must be a finite number, got {value}")


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An ``argparse`` type for the scripts of ``bash/``: an integer ≥ ``minimum``, else a
    usage error (exit status 2) saying why."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    return parse
