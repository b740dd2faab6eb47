"""Order codes: random over the configured alphabet, of the area's length (GeneratorSettings.length_in).

Drawn with `secrets`: the code is the only thing a driver needs to take an order, so it must not be
predictable from the codes seen before (a counter or a seeded PRNG would be).
"""
from __future__ import annotations

import secrets

from .schemas import GeneratorSettings


def generate(settings: GeneratorSettings, length: int) -> str:
    return "".join(secrets.choice(settings.alphabet) for _ in range(length))


def space_size(settings: GeneratorSettings, length: int) -> int:
    """How many distinct codes of `length` the settings allow."""
    return len(settings.alphabet) ** length
