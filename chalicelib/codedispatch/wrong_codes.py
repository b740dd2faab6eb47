"""Brute force: codes are short, so a driver could try them all.

Typed codes are counted per driver (park and profile), per area, in two fixed periods (WrongCodes, TTL): the
window (default 10 minutes, max_wrong_codes per window) and the UTC day (daily_wrong_codes =
lockout_after_limits x max_wrong_codes, default 2 x 10). Before looking a code up, assign reserves one try in
each with an atomic ADD conditional on count < limit (so concurrent guesses cannot overshoot); a code that
leads to an order gives both back. Over either limit every code, right or wrong, gets 429 too_many_attempts
with `retry_after_seconds` (to the window's end, or to the day's end: the lockout), so the answer leaks
nothing. Malformed codes (400) do not count. Nothing is counted per area as a whole: one driver's guesses
never lock out another driver.

The lockout reads "a driver who hits his limit twice in a day" as "typed twice the window's limit of wrong
codes in a day": counted per code, not per window that reached its limit, so a guesser who stops one short
of the limit in every window (9 x 144 a day) is locked out as soon as one who hits it.

Day = UTC day, not a rolling 24 h: the same atomic conditional ADD as the window (no read-modify-write of
a list of strikes, no race), one key per day, and an end anyone can state ("until 03:00 Moscow time"). Its
cost: a guesser can use up one day's allowance just before midnight and the next day's just after (at most
2 x 20 codes in any 24 h, instead of about 1,400 a day before).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math

from pynamodb.exceptions import UpdateError

from chalicelib.core import clock
from chalicelib.core.dynamo import update_if
from chalicelib.core.errors import TooManyRequests, describe
from chalicelib.core.identity import DriverIdentity
from chalicelib.core.logs import get_logger

from .models import WrongCodes, wrong_codes_key
from .schemas import DAY_SECONDS, GeneratorSettings

log = get_logger(__name__)


class TooManyAttempts(TooManyRequests):
    """The driver typed too many wrong codes in this area lately."""

    code = "too_many_attempts"


@dataclasses.dataclass(frozen=True)
class _Period:
    name: str  # "window" | "day": part of the counter's key
    seconds: int
    limit: int


def _periods(generator: GeneratorSettings) -> list[_Period]:
    # The day first: when both are used up, the answer's retry_after is the day's end, not the window's.
    return [_Period("day", DAY_SECONDS, generator.daily_wrong_codes),
            _Period("window", generator.wrong_codes_window_seconds, generator.max_wrong_codes)]


def _reserve(driver: DriverIdentity, area_id: str, period: _Period) -> WrongCodes:
    """One try in the period's current counter, or TooManyAttempts when it is used up."""
    index = math.floor(clock.now().timestamp() / period.seconds)
    ends = dt.datetime.fromtimestamp((index + 1) * period.seconds, dt.timezone.utc)
    counter = WrongCodes(counter_key=wrong_codes_key(area_id, driver.park_id, driver.driver_profile_id,
                                                     period.name, index))
    if not update_if(counter, [WrongCodes.count.add(1), WrongCodes.expires_at.set(ends)],
                     WrongCodes.count.does_not_exist() | (WrongCodes.count < period.limit)):
        retry_after = max(1, math.ceil((ends - clock.now()).total_seconds()))
        log.warning_event("codedispatch.too_many_wrong_codes", area_id=area_id, park_db_id=driver.park_id,
                          driver_profile_id=driver.driver_profile_id, period=period.name, limit=period.limit,
                          retry_after_seconds=retry_after)
        raise TooManyAttempts("too many wrong codes, try again later",
                              details={"retry_after_seconds": retry_after})
    return counter


def reserve_try(driver: DriverIdentity, area_id: str, generator: GeneratorSettings) -> list[WrongCodes]:
    """Count this typed code as a guess in the day and the window, atomically, unless the driver is over
    either limit (-> 429). Returns the counters to give back if the code leads to an order."""
    reserved: list[WrongCodes] = []
    try:
        for period in _periods(generator):
            reserved.append(_reserve(driver, area_id, period))
    except TooManyAttempts:
        give_back_try(reserved)  # refused: this code was not tried
        raise
    return reserved


def give_back_try(counters: list[WrongCodes]) -> None:
    """The typed code led to an order (or was refused): it was no guess."""
    for counter in counters:
        try:
            counter.update(actions=[WrongCodes.count.add(-1)])
        except UpdateError as error:  # the driver only loses one try of the period
            log.warning_event("codedispatch.try_not_given_back", error=describe(error))
