"""Brute force: codes are short, so a driver could try them all.

Typed codes are counted per driver (park and profile), per area, per fixed window (WrongCodes, TTL). Before
looking a code up, assign reserves one try with an atomic ADD conditional on count < limit (so concurrent
guesses cannot overshoot); a code that leads to an order gives the try back. Over the limit every code,
right or wrong, gets 429 too_many_attempts until the window ends, so the answer leaks nothing. Limit and
window are in CODE_DISPATCH_GENERATOR_SETTINGS (default 10 per 10 minutes); malformed codes (400) do not count.
"""
from __future__ import annotations

import datetime as dt
import math

from pynamodb.exceptions import UpdateError

from chalicelib.core import clock
from chalicelib.core.dynamo import condition_failed
from chalicelib.core.errors import TooManyRequests, describe
from chalicelib.core.identity import DriverIdentity
from chalicelib.core.logs import get_logger

from .models import WrongCodes, wrong_codes_key
from .schemas import GeneratorSettings

log = get_logger(__name__)


class TooManyAttempts(TooManyRequests):
    """The driver typed too many wrong codes in this area lately."""

    code = "too_many_attempts"


def _window(generator: GeneratorSettings) -> tuple[int, dt.datetime]:
    """The current fixed window's index and end."""
    seconds = generator.wrong_codes_window_seconds
    index = math.floor(clock.now().timestamp() / seconds)
    return index, dt.datetime.fromtimestamp((index + 1) * seconds, dt.timezone.utc)


def _counter(driver: DriverIdentity, area_id: str, generator: GeneratorSettings) -> tuple[WrongCodes, dt.datetime]:
    index, ends = _window(generator)
    return WrongCodes(counter_key=wrong_codes_key(area_id, driver.park_id, driver.driver_profile_id, index)), ends


def reserve_try(driver: DriverIdentity, area_id: str, generator: GeneratorSettings) -> WrongCodes:
    """Count this typed code as a guess, atomically, unless the driver is over the limit (-> 429)."""
    counter, ends = _counter(driver, area_id, generator)
    try:
        counter.update(
            actions=[WrongCodes.count.add(1), WrongCodes.expires_at.set(ends)],
            condition=WrongCodes.count.does_not_exist() | (WrongCodes.count < generator.max_wrong_codes),
        )
    except UpdateError as error:
        if not condition_failed(error):
            raise
        retry_after = max(1, math.ceil((ends - clock.now()).total_seconds()))
        log.warning_event("codedispatch.too_many_wrong_codes", area_id=area_id, park_db_id=driver.park_id,
                          driver_profile_id=driver.driver_profile_id, limit=generator.max_wrong_codes)
        raise TooManyAttempts("too many wrong codes, try again later",
                              details={"retry_after_seconds": retry_after}) from None
    return counter


def give_back_try(counter: WrongCodes) -> None:
    """The typed code led to an order: it was no guess."""
    try:
        counter.update(actions=[WrongCodes.count.add(-1)])
    except UpdateError as error:  # the driver only loses one try of the window
        log.warning_event("codedispatch.try_not_given_back", error=describe(error))
