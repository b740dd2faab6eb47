"""Brute force: a driver who types too many wrong codes in an area is refused for a while (finding 4), and
for the rest of the UTC day once he has typed lockout_after_limits windows' worth (issue 14, item 5)."""
from __future__ import annotations

import datetime as dt
import json
import threading

import pytest

from chalicelib.codedispatch import codes
from chalicelib.codedispatch.assign import assign_order
from chalicelib.codedispatch.models import WrongCodes
from chalicelib.codedispatch.wrong_codes import TooManyAttempts
from chalicelib.core import clock
from chalicelib.core.identity import DriverIdentity
from chalicelib.core.errors import AppError, NotFound
from tests.conftest import as_driver
from tests.codedispatch.conftest import (
    AREA, T0, ZONE, assign, atomic_moto_writes, created_code, enable, post, set_configs,
)

WINDOW = dt.timedelta(seconds=600)
NEXT_UTC_DAY = dt.datetime(2026, 11, 24, tzinfo=dt.timezone.utc)  # T0 is 2026-11-23 18:00 UTC


def wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def test_too_many_attempts_is_an_app_error_with_429():
    error = TooManyAttempts("x")
    assert isinstance(error, AppError) and (error.status, error.code) == (429, "too_many_attempts")


def test_after_ten_wrong_codes_even_the_right_one_is_429(cd):
    code = created_code(cd, "order-1")
    for _ in range(10):
        answer = assign(cd, wrong(code), "a")
        assert (answer.status_code, answer.json_body["code"]) == (404, "code_not_found")
    refused = assign(cd, code, "a")
    assert (refused.status_code, refused.json_body["code"]) == (429, "too_many_attempts")
    assert refused.json_body["message"]
    assert assign(cd, wrong(code), "a").status_code == 429  # no answer tells right from wrong now


def test_the_limit_is_per_driver_and_per_area(cd):
    enable(zones={AREA: ZONE, "luzhniki": ZONE})
    code = created_code(cd, "order-1")
    for _ in range(10):
        assign(cd, wrong(code), "a")
    assert assign(cd, wrong(code), "a").status_code == 429
    assert assign(cd, wrong(code), "a", area_id="luzhniki").status_code == 404
    assert assign(cd, code, "b").status_code == 200


def test_the_limit_is_per_park_and_profile_not_their_joined_id(cd):
    code = created_code(cd, "order-1")
    for _ in range(10):
        post(cd, "/codedispatch/order/assign", {"code": wrong(code), "area_id": AREA},
             as_driver("a_b", "c"))
    other = post(cd, "/codedispatch/order/assign", {"code": wrong(code), "area_id": AREA},
                 as_driver("a", "b_c"))
    assert other.status_code == 404


def test_the_window_passes(cd):
    code = created_code(cd, "order-1")
    for _ in range(10):
        assign(cd, wrong(code), "a")
    assert assign(cd, code, "a").status_code == 429
    clock.advance(seconds=600)
    assert assign(cd, code, "a").status_code == 200


def test_right_codes_and_bad_formats_do_not_count(cd):
    code = created_code(cd, "order-1")
    for _ in range(12):
        assert assign(cd, code, "a").status_code == 200  # the same driver repeating
        assert assign(cd, "12ab", "a").status_code == 400
    for _ in range(12):
        assert assign(cd, code, "b").status_code == 409  # a real code, taken: not a guess
    assert assign(cd, wrong(code), "b").status_code == 404


def test_limit_and_window_come_from_the_generator_settings(cd):
    set_configs(CODE_DISPATCH_GENERATOR_SETTINGS={"length": 6, "alphabet": "0123456789", "max_wrong_codes": 2,
                                                  "wrong_codes_window_seconds": 60})
    code = created_code(cd, "order-1")
    assert [assign(cd, wrong(code), "a").status_code for _ in range(3)] == [404, 404, 429]
    clock.advance(seconds=60)
    assert assign(cd, code, "a").status_code == 200


def test_the_counters_expire_through_ttl(cd):
    code = created_code(cd, "order-1")
    assign(cd, wrong(code), "a")
    counters = {json.loads(item.counter_key)[3]: item for item in WrongCodes.scan()}
    assert {period: item.count for period, item in counters.items()} == {"window": 1, "day": 1}
    assert clock.now() < counters["window"].expires_at <= clock.now() + WINDOW
    assert counters["day"].expires_at == NEXT_UTC_DAY


def hit_the_limit(cd, code: str, who: str = "a", area_id: str = AREA) -> None:
    for _ in range(10):
        answer = assign(cd, wrong(code), who, area_id)
        assert (answer.status_code, answer.json_body["code"]) == (404, "code_not_found"), answer.json_body
    assert assign(cd, code, who, area_id).status_code == 429


def test_hitting_the_limit_twice_in_a_day_locks_the_driver_out_until_the_day_ends(cd):
    code = created_code(cd, "order-1")
    hit_the_limit(cd, code)
    clock.advance(seconds=600)  # the window passed: the driver may try again, once more up to the limit
    hit_the_limit(cd, code)
    for later in (600, 3600):  # windows pass, the lockout does not
        clock.advance(seconds=later)
        refused = assign(cd, code, "a")
        assert (refused.status_code, refused.json_body["code"]) == (429, "too_many_attempts")
        assert refused.json_body["details"]["retry_after_seconds"] == (NEXT_UTC_DAY - clock.now()).total_seconds()
    assert assign(cd, wrong(code), "a").status_code == 429  # right or wrong: the same answer
    clock.freeze(NEXT_UTC_DAY)
    answer = assign(cd, created_code(cd, "order-2"), "a")  # order-1's code has expired by now
    assert answer.status_code == 200, answer.json_body


def test_the_first_limit_of_the_day_waits_for_the_window_only(cd):
    code = created_code(cd, "order-1")
    hit_the_limit(cd, code)
    refused = assign(cd, code, "a")
    window_ends = T0 + WINDOW  # T0 starts a window
    assert refused.json_body["details"]["retry_after_seconds"] == (window_ends - clock.now()).total_seconds()


def test_stopping_one_short_of_the_limit_in_every_window_is_locked_out_all_the_same(cd):
    code = created_code(cd, "order-1")
    statuses = []
    for _ in range(3):
        statuses += [assign(cd, wrong(code), "a").status_code for _ in range(9)]
        clock.advance(seconds=600)
    assert statuses == [404] * 20 + [429] * 7  # 20 wrong codes a day (2 x 10), however they are spread
    assert assign(cd, code, "a").status_code == 429


def test_one_driver_s_lockout_never_locks_out_another_driver(cd):
    enable(zones={AREA: ZONE, "luzhniki": ZONE})
    code = created_code(cd, "order-1")
    hit_the_limit(cd, code, "a")
    clock.advance(seconds=600)
    hit_the_limit(cd, code, "a")
    assert assign(cd, code, "a").status_code == 429
    other = assign(cd, wrong(code), "b")  # same area, same park, same day
    assert (other.status_code, other.json_body["code"]) == (404, "code_not_found")
    assert assign(cd, code, "b").status_code == 200
    assert assign(cd, wrong(code), "a", area_id="luzhniki").status_code == 404  # his other areas too


def test_the_lockout_threshold_is_a_config(cd):
    set_configs(CODE_DISPATCH_GENERATOR_SETTINGS={"length": 6, "alphabet": "0123456789", "max_wrong_codes": 2,
                                                  "wrong_codes_window_seconds": 60, "lockout_after_limits": 3})
    code = created_code(cd, "order-1")
    statuses = []
    for _ in range(4):
        statuses += [assign(cd, wrong(code), "a").status_code for _ in range(3)]
        clock.advance(seconds=60)
    assert statuses == [404, 404, 429] * 3 + [429] * 3  # 3 windows' limits, then locked out


def test_right_codes_given_back_do_not_count_towards_the_lockout(cd):
    code = created_code(cd, "order-1")
    for _ in range(25):
        assert assign(cd, code, "a").status_code == 200
    statuses = [assign(cd, wrong(code), "a").status_code for _ in range(11)]
    assert statuses == [404] * 10 + [429]


def wrong_code_metrics(capsys) -> list[dict]:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    return [line for line in lines if "CodesWrong" in line]


def test_wrong_codes_are_an_emf_metric_per_area(cd, capsys):
    enable(zones={AREA: ZONE, "luzhniki": ZONE})
    code = created_code(cd, "order-1")
    capsys.readouterr()
    assign(cd, wrong(code), "a")
    assign(cd, wrong(code), "b", area_id="luzhniki")
    assign(cd, code, "a")  # a right code is not counted
    records = wrong_code_metrics(capsys)
    assert [(r["service"], r["area_id"], r["CodesWrong"]) for r in records] == [
        ("codedispatch", AREA, 1), ("codedispatch", "luzhniki", 1)]
    for record in records:
        (directive,) = record["_aws"]["CloudWatchMetrics"]
        assert directive["Dimensions"] == [["service", "area_id"]]
        assert directive["Metrics"] == [{"Name": "CodesWrong", "Unit": "Count"}]


@pytest.mark.parametrize("typed", ["12a456", "1"])
def test_malformed_codes_are_no_metric(cd, capsys, typed):
    capsys.readouterr()
    assert assign(cd, typed, "a").status_code == 400
    assert wrong_code_metrics(capsys) == []


def test_concurrent_guesses_never_exceed_the_limit(cd, monkeypatch):
    atomic_moto_writes(monkeypatch)
    monkeypatch.setattr(codes, "generate", lambda settings, length: "123456")
    created_code(cd, "order-1")
    driver = DriverIdentity("park1", "driver-x")
    outcomes: list[str] = []
    barrier = threading.Barrier(20)

    def guess(i):
        barrier.wait(timeout=10)
        try:
            assign_order(driver, f"{900000 + i}", AREA)
        except (NotFound, TooManyAttempts) as error:
            outcomes.append(error.code)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["code_not_found"] * 10 + ["too_many_attempts"] * 10
