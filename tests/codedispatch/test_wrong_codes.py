"""Brute force: a driver who types too many wrong codes in an area is refused for a while (finding 4)."""
from __future__ import annotations

import datetime as dt
import threading

from chalicelib.codedispatch import codes, service
from chalicelib.codedispatch.models import WrongCodes
from chalicelib.codedispatch.service import TooManyAttempts
from chalicelib.core import clock
from chalicelib.core.identity import DriverIdentity
from chalicelib.core.errors import AppError, NotFound
from tests.conftest import as_driver
from tests.codedispatch.conftest import (
    AREA, ZONE, assign, atomic_moto_writes, created_code, enable, post, set_configs,
)


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


def test_the_counter_expires_through_ttl(cd):
    code = created_code(cd, "order-1")
    assign(cd, wrong(code), "a")
    (item,) = list(WrongCodes.scan())
    assert item.count == 1
    assert clock.now() < item.expires_at <= clock.now() + dt.timedelta(seconds=600)


def test_concurrent_guesses_never_exceed_the_limit(cd, monkeypatch):
    atomic_moto_writes(monkeypatch)
    monkeypatch.setattr(codes, "generate", lambda settings: "123456")
    created_code(cd, "order-1")
    driver = DriverIdentity("park1", "driver-x")
    outcomes: list[str] = []
    barrier = threading.Barrier(20)

    def guess(i):
        barrier.wait(timeout=10)
        try:
            service.assign_order(driver, f"{900000 + i}", AREA)
        except (NotFound, TooManyAttempts) as error:
            outcomes.append(error.code)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["code_not_found"] * 10 + ["too_many_attempts"] * 10
