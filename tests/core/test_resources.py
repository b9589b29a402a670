"""Sizes in messages about memory."""

from __future__ import annotations

import pytest

from nrmkit.core.resources import format_bytes


@pytest.mark.parametrize(("nbytes", "text"), [
    (0.0, "0 bytes"), (1.07, "1 byte"), (1023.0, "1023 bytes"), (1024.0, "1 KiB"),
    (12.5 * 1024, "12 KiB"), (3 * 1024.0**2, "3.0 MiB"), (3.7 * 1024.0**3, "3.7 GiB"),
    (2 * 1024.0**4, "2.0 TiB"),
])
def test_format_bytes_never_rounds_a_small_limit_to_zero_kib(nbytes, text):
    assert format_bytes(nbytes) == text
