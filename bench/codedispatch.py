"""Codedispatch benchmark: codes generated per second, and attempts per code as an area fills up.

In-process against moto (no network; moto's costs are not DynamoDB's: read the ratios, not the absolutes).
Runs from the repo root: `.venv/bin/python bench/codedispatch.py`. Bounded: each phase stops at its deadline.
"""
from __future__ import annotations

import time

from _env import prepare  # noqa: E402

ROOT = prepare(CONFIG_CACHE_SECONDS="60", LOG_LEVEL="ERROR")

from moto import mock_aws  # noqa: E402

import app  # noqa: E402,F401  - registers every table and config
from chalicelib.codedispatch import codes, create  # noqa: E402
from chalicelib.codedispatch.models import AreaCode, Assignment  # noqa: E402
from chalicelib.codedispatch.schemas import GeneratorSettings  # noqa: E402
from chalicelib.core import config  # noqa: E402
from chalicelib.core.config import ConfigValue  # noqa: E402
from chalicelib.core.errors import Conflict  # noqa: E402

ZONE = {"enabled": True, "order_expire_seconds": 3600}
SMALL_AREA_LIMITS = {"max_wrong_codes": 1, "lockout_after_limits": 1}
TOTAL_BUDGET_SECONDS = 50


def configure(areas: list[str], generator: dict) -> None:
    config.write("code_dispatch", {"enabled": True})
    config.write("CODE_DISPATCH_ZONES_SETTINGS", {area: ZONE for area in areas})
    config.write("CODE_DISPATCH_GENERATOR_SETTINGS", generator)


def generator_only(seconds: float = 1.0) -> float:
    settings = GeneratorSettings()
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(1000):
            codes.generate(settings, settings.length)
        count += 1000
    return count / (time.perf_counter() - started)


def creates_per_second(count: int, deadline: float) -> tuple[int, float, float]:
    """6-digit codes in a nearly empty area: (codes, codes/s, attempts/code)."""
    configure(["zenit"], {"length": 6, "alphabet": "0123456789", "max_attempts": 10})
    attempts, done, started = 0, 0, time.perf_counter()
    for i in range(count):
        if time.perf_counter() > deadline:
            break
        attempts += create.create_order(f"speed-{i}", "zenit").attempts
        done += 1
    elapsed = time.perf_counter() - started
    return done, done / elapsed, attempts / max(done, 1)


def fill_up(area: str, generator: dict, deadline: float) -> list[tuple[float, float, int, float]]:
    """Fill one area to the end: per tenth of the space, (fill, mean attempts, max attempts, expected)."""
    settings = GeneratorSettings.model_validate(generator)
    space = codes.space_size(settings, settings.length)
    configure([area], generator)
    buckets: dict[int, list[int]] = {}
    exhausted_at = None
    for i in range(space + 1):
        if time.perf_counter() > deadline:
            break
        try:
            created = create.create_order(f"{area}-{i}", area)
        except Conflict as error:
            assert error.code == "codes_exhausted", error.code
            exhausted_at = i
            break
        buckets.setdefault(i * 10 // space, []).append(created.attempts)
    rows = []
    for tenth in sorted(buckets):
        values = buckets[tenth]
        # Filling from i to i+1 codes out of `space`: expected draws space/(space-i), averaged over the tenth.
        lo, hi = tenth * space // 10, min(space, (tenth + 1) * space // 10)
        expected = sum(space / (space - i) for i in range(lo, hi)) / max(hi - lo, 1)
        rows.append((tenth / 10, sum(values) / len(values), max(values), expected))
    print(f"  area {area}: space {space} codes, max_attempts {settings.max_attempts}; "
          f"first refusal (codes_exhausted) at order #{exhausted_at}")
    return rows


def main() -> None:
    deadline = time.perf_counter() + TOTAL_BUDGET_SECONDS
    with mock_aws():
        for model in (ConfigValue, Assignment, AreaCode):
            model._connection = None
            model.create_table(wait=True)
        print("codedispatch benchmark (moto, in-process)")
        raw = generator_only()
        print(f"generator alone (6 digits, secrets): {raw:,.0f} codes/s")
        done, rate, attempts = creates_per_second(150, deadline)
        print(f"create in an empty area (6 digits): {done} codes, {rate:,.0f} codes/s, "
              f"{attempts:.3f} attempts/code; storage is {raw / rate:,.0f}x the cost of drawing")
        # Areas this small are valid only with one wrong code per driver and day (schemas:
        # CODE_SPACE_PER_DAILY_GUESS); the wrong-code limits play no part in creating codes.
        print("attempts per code as an area fills (10x10 = 100 codes, max_attempts 50):")
        print(f"  {'fill':>6} {'mean':>7} {'max':>5} {'expected':>9} {'ratio':>6}")
        for fill, mean, most, expected in fill_up("small", {"length": 2, "alphabet": "0123456789",
                                                            "max_attempts": 50, **SMALL_AREA_LIMITS}, deadline):
            print(f"  {fill:>6.0%} {mean:>7.2f} {most:>5d} {expected:>9.2f} {mean / expected:>6.2f}")
        print("attempts per code as an area fills (16^2 = 256 codes, max_attempts 10):")
        print(f"  {'fill':>6} {'mean':>7} {'max':>5} {'expected':>9} {'ratio':>6}")
        started = time.perf_counter()
        rows = fill_up("medium", {"length": 2, "alphabet": "0123456789ABCDEF", "max_attempts": 10,
                                  **SMALL_AREA_LIMITS}, deadline)
        for fill, mean, most, expected in rows:
            print(f"  {fill:>6.0%} {mean:>7.2f} {most:>5d} {expected:>9.2f} {mean / expected:>6.2f}")
        print(f"  ({time.perf_counter() - started:.1f} s) expected = mean of space/(space-i) over the tenth "
              "(geometric draws); successful creates only, capped at max_attempts, so the top tenth reads low")
        chances = ", ".join(f"{f:.0%} -> {f ** 10:.2%}" for f in (0.5, 0.7, 0.8, 0.9))
        print(f"refusal chance per create at fill f with max_attempts 10 (f^10): {chances}; "
              f"6 digits = 1,000,000 codes: refusals start near 500,000 live codes in one area")


if __name__ == "__main__":
    main()
