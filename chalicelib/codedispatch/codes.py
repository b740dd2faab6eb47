"""Order codes: random over the configured alphabet and length.

Drawn with `secrets`: the code is the only thing a driver needs to take an order, so it must not be
predictable from the codes seen before (a counter or a seeded PRNG would be).
"""
from __future__ import annotations

import secrets

from .schemas import GeneratorSettings


def generate(settings: GeneratorSettings) -> str:
    return "".join(secrets.choice(settings.alphabet) for _ in range(settings.length))


def space_size(settings: GeneratorSettings) -> int:
    """How many distinct codes the settings allow."""
    return len(settings.alphabet) ** settings.length
