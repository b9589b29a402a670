"""Option checks of the configurations: a refused value is a
:class:`~nrmkit.core.errors.ConfigError` naming the option (exit status 2 on the command line)."""

from __future__ import annotations

import math

from nrmkit.core.errors import ConfigError


def check(condition: bool, option_name: str, reason: str) -> None:
    """Raise :class:`ConfigError` for ``option_name`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(option_name, reason)


def check_finite(value: float, option_name: str) -> None:
    check(math.isfinite(value), option_name, f"must be a finite number, got {value}")
