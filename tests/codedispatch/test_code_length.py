"""The code length per area (issue 14, item 5): an area under attack gets longer codes through its zone
settings' `code_length`; codes it issued before keep working until they expire."""
from __future__ import annotations

from chalicelib.codedispatch.models import WrongCodes
from tests.codedispatch.conftest import AREA, ZONE, assign, created_code, enable, lookup

LONG = {**ZONE, "code_length": 9}


def test_an_area_s_code_length_shapes_its_new_codes_only(cd):
    enable(zones={AREA: LONG, "luzhniki": ZONE})
    long_code = created_code(cd, "order-1")
    assert len(long_code) == 9 and long_code.isdigit()
    assert len(created_code(cd, "order-2", "luzhniki")) == 6  # other areas keep the generator's length


def test_codes_issued_before_the_area_got_longer_codes_still_assign(cd, upstream):
    old_code = created_code(cd, "order-old")
    enable(zones={AREA: LONG})  # the area is under attack: longer codes from now on
    new_code = created_code(cd, "order-new")
    assert (len(old_code), len(new_code)) == (6, 9)
    for who, code, order_id in (("a", old_code, "order-old"), ("b", new_code, "order-new")):
        answer = assign(cd, code, who)
        assert answer.status_code == 200, answer.json_body
        assert answer.json_body["order_id"] == order_id
        assert lookup(cd, order_id).status_code == 200
    assert {item.count for item in WrongCodes.scan()} == {0}  # neither counted as a guess


def test_the_old_length_typed_wrong_is_a_wrong_code_not_a_bad_request(cd):
    old_code = created_code(cd, "order-old")
    enable(zones={AREA: LONG})
    answer = assign(cd, "000000" if old_code != "000000" else "111111", "a")
    assert (answer.status_code, answer.json_body["code"]) == (404, "code_not_found")


def test_an_area_s_length_never_shortens_the_generator_s(cd):
    enable(zones={AREA: {**ZONE, "code_length": 4}})
    assert len(created_code(cd, "order-1")) == 6
