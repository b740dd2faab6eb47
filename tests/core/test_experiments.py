"""Experiments: a value chosen per call from kwargs. Clauses in order, first match wins, else the default;
a missing kwarg matches nothing; percentages are stable and salted by the experiment's name; stored,
validated (400 at PUT) and cached like configs."""
from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest

from chalicelib.core import config, experiments
from chalicelib.core.settings import get_settings, reload_settings
from tests.conftest import ROOT

NAME = "test_experiment_colour"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def colour(monkeypatch):
    """An experiment of the tests only (kept out of the app's registry after the test)."""
    definition = config.ExperimentDef(name=NAME, type_=str, raw_default="grey", description="a test experiment",
                                      kwargs=("area_id", "user_id", "park_id"))
    monkeypatch.setitem(config.REGISTRY, NAME, definition)
    yield definition
    definition.forget_cache()


def clause(predicate: dict, value: str, title: str = "") -> dict:
    return {"title": title, "predicate": predicate, "value": value}


def store(definition, *clauses: dict, default: str = "grey") -> None:
    config.write(definition.name, {"clauses": list(clauses), "default": default})


def test_clauses_are_checked_in_order_and_the_first_match_wins(aws_mock, colour):
    store(colour,
          clause({"in": {"area_id": ["zenit", "luzhniki"]}}, "red"),
          clause({"eq": {"user_id": "alice"}}, "blue"),
          clause({"in": {"area_id": ["zenit"]}}, "never: an earlier clause takes zenit"))
    assert colour.get(area_id="zenit", user_id="alice") == "red"
    assert colour.get(area_id="luzhniki") == "red"
    assert colour.get(area_id="kazan", user_id="alice") == "blue"
    assert colour.get(area_id="kazan", user_id="bob") == "grey"  # none matches: the default


def test_all_any_and_true(aws_mock, colour):
    store(colour,
          clause({"all": [{"eq": {"area_id": "zenit"}}, {"any": [{"eq": {"user_id": "a"}}, {"eq": {"park_id": "p"}}]}]},
                 "both"),
          clause({"true": {}}, "everyone else"), default="unreachable")
    assert colour.get(area_id="zenit", user_id="a") == colour.get(area_id="zenit", park_id="p") == "both"
    assert colour.get(area_id="zenit", user_id="b") == "everyone else"
    assert colour.get() == "everyone else"


def test_a_missing_or_none_kwarg_matches_nothing_and_never_raises(aws_mock, colour):
    store(colour, clause({"in": {"area_id": ["zenit"]}}, "in"), clause({"eq": {"user_id": "alice"}}, "eq"),
          clause({"percent": {"arg": "park_id", "from": 0, "to": 100}}, "percent"))
    assert colour.get() == "grey"
    assert colour.get(area_id=None, user_id=None, park_id=None) == "grey"
    assert colour.get(area_id=["zenit"], user_id={"a": 1}) == "grey"  # odd types: no match, no error
    assert colour.get(park_id="any park") == "percent"  # 0..100 is everybody who has the kwarg


def test_values_compare_by_json_type(aws_mock, colour):
    store(colour, clause({"in": {"area_id": [1, True]}}, "typed"))
    assert colour.get(area_id=1) == colour.get(area_id=True) == "typed"
    assert colour.get(area_id="1") == "grey" and colour.get(area_id=0) == "grey"


def test_percent_is_stable_and_spread_evenly(aws_mock, colour):
    store(colour, clause({"percent": {"arg": "user_id", "from": 0, "to": 20}}, "in"))
    users = [f"user-{index}" for index in range(5000)]
    # snapshot(): one read of the experiment for many calls (with CONFIG_CACHE_SECONDS=0 get() reads each time)
    first = [colour.snapshot().match({"user_id": user}) for user in users[:50]]
    assert first == [colour.get(user_id=user) for user in users[:50]]
    experiment = colour.snapshot()
    first = [experiment.match({"user_id": user}) for user in users]
    colour.forget_cache()
    again = colour.snapshot()
    assert [again.match({"user_id": user}) for user in users] == first  # the same user, the same side
    share = first.count("in") / len(users)
    assert 0.18 <= share <= 0.22, share
    buckets = [experiments.percent_bucket(NAME, user) for user in users]
    assert min(buckets) == 0 and max(buckets) == 99
    assert all(25 <= buckets.count(b) <= 80 for b in range(100))  # ~50 +- 7 per bucket: none far off


def test_percent_is_the_same_in_another_process():
    """Not Python's hash() (salted per process): another interpreter puts every user in the same bucket."""
    users = [f"user-{index}" for index in range(50)]
    here = [experiments.percent_bucket(NAME, user) for user in users]
    code = ("import json, sys; from chalicelib.core import experiments; "
            f"print(json.dumps([experiments.percent_bucket({NAME!r}, u) for u in {users!r}]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"})
    assert json.loads(out.stdout) == here


def test_percent_is_salted_by_the_experiment_name_unless_a_salt_is_given():
    users = [f"user-{index}" for index in range(4000)]
    first = {u for u in users if experiments.percent_bucket("experiment_a", u) < 20}
    second = {u for u in users if experiments.percent_bucket("experiment_b", u) < 20}
    overlap = len(first & second) / len(users)
    assert 0.02 <= overlap <= 0.06, overlap  # independent: ~20 % of 20 %, not the same 20 %


def test_a_shared_salt_picks_the_same_users_in_two_experiments(aws_mock, colour):
    store(colour, clause({"percent": {"arg": "user_id", "from": 0, "to": 30, "salt": "wave-1"}}, "in"))
    users = [f"user-{index}" for index in range(300)]
    experiment = colour.snapshot()
    assert {u for u in users if experiment.match({"user_id": u}) == "in"} == {
        u for u in users if experiments.percent_bucket("wave-1", u) < 30}


@pytest.mark.parametrize("value, where", [
    ({"clauses": [clause({"nope": {}}, "x")], "default": "grey"}, "clauses.0.predicate"),
    ({"clauses": [clause({"in": {"area_id": ["a"]}, "eq": {"user_id": "b"}}, "x")], "default": "grey"},
     "clauses.0.predicate"),
    ({"clauses": [clause({"in": {"area_id": []}}, "x")], "default": "grey"}, "clauses.0.predicate"),
    ({"clauses": [clause({"in": {"area_id": ["a"], "user_id": ["b"]}}, "x")], "default": "grey"},
     "clauses.0.predicate"),
    ({"clauses": [clause({"eq": {"area_id": {"nested": 1}}}, "x")], "default": "grey"}, "clauses.0.predicate"),
    ({"clauses": [clause({"percent": {"arg": "user_id", "from": 50, "to": 10}}, "x")], "default": "grey"},
     "clauses.0.predicate"),
    ({"clauses": [clause({"percent": {"arg": "user_id", "from": 0, "to": 101}}, "x")], "default": "grey"},
     "clauses.0.predicate"),
    ({"clauses": [clause({"all": []}, "x")], "default": "grey"}, "clauses.0.predicate"),
    ({"clauses": [clause({"true": {"x": 1}}, "x")], "default": "grey"}, "clauses.0.predicate"),
    ({"clauses": [clause({"eq": {"city": "spb"}}, "x")], "default": "grey"}, "clauses"),  # not a kwarg of it
    ({"clauses": [clause({"true": {}}, 5)], "default": "grey"}, "clauses.0.value"),
    ({"clauses": [], "default": 5}, "default"),
    ({"clauses": []}, "default"),
    ({"clauses": [], "default": "grey", "extra": 1}, "extra"),
    ([1, 2], ""),
])
def test_a_bad_experiment_is_a_400_at_put_and_is_not_stored(client, colour, value, where):
    answer = client.http.put(f"/internal/v1/configs/{NAME}", headers=JSON, body=json.dumps({"value": value}))
    assert answer.status_code == 400, answer.body
    body = answer.json_body
    assert body["code"] == "invalid_config_value"
    assert any(error["loc"].startswith(where) for error in body["details"]["errors"]), body
    assert client.http.get(f"/internal/v1/configs/{NAME}").json_body["is_default"] is True


def test_the_api_says_what_is_an_experiment_and_normalises_a_plain_value(client, colour):
    answer = client.http.get(f"/internal/v1/configs/{NAME}")
    assert answer.json_body == {"name": NAME, "kind": "experiment", "is_default": True,
                                "value": {"clauses": [], "default": "grey"}, "description": "a test experiment",
                                "kwargs": ["area_id", "user_id", "park_id"]}
    value = {"clauses": [clause({"percent": {"arg": "user_id", "from": 0, "to": 5}}, "x", "five percent")],
             "default": "grey"}
    answer = client.http.put(f"/internal/v1/configs/{NAME}", headers=JSON, body=json.dumps({"value": value}))
    assert answer.status_code == 200 and answer.json_body["value"] == value  # aliases (`from`) round-trip
    answer = client.http.put(f"/internal/v1/configs/{NAME}", headers=JSON, body=json.dumps({"value": "pink"}))
    assert answer.json_body["value"] == {"clauses": [], "default": "pink"}  # a plain value: for everybody
    assert colour.get(user_id="anyone") == "pink"
    config_answer = client.http.get("/internal/v1/configs/order_route_sharing_keep_after_finish_hours").json_body
    assert config_answer["kind"] == "config" and "kwargs" not in config_answer


def test_a_stored_value_that_no_longer_validates_falls_back_to_the_default(aws_mock, colour, capsys):
    for text in ('{"clauses": [{"predicate": {"bad": 1}, "value": "x"}], "default": "red"}', "not json", "5"):
        config.ConfigValue(name=NAME, value=text, updated_at=config.clock.now()).save()
        capsys.readouterr()
        assert colour.get(area_id="zenit") == "grey", text
        assert [json.loads(line)["event"] for line in capsys.readouterr().out.splitlines()] == [
            "config.stored_value_invalid"]


def test_a_plain_value_stored_before_the_name_became_an_experiment_is_its_default(aws_mock, colour):
    config.ConfigValue(name=NAME, value='"green"', updated_at=config.clock.now()).save()
    assert colour.get(area_id="zenit") == "green"
    assert config.read(NAME)["value"] == {"clauses": [], "default": "green"}


class FakeMonotonic:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cached_like_configs_one_read_for_many_calls_until_the_cache_time_passes(aws_mock, colour, monkeypatch):
    monkeypatch.setenv("CONFIG_CACHE_SECONDS", "60")
    reload_settings()
    assert get_settings().config_cache_seconds == 60
    ticks = FakeMonotonic()
    monkeypatch.setattr(config, "time", types.SimpleNamespace(monotonic=ticks))
    store(colour, clause({"eq": {"area_id": "zenit"}}, "red"))  # a write in this process is seen at once
    reads = []
    real_get = config.ConfigValue.get.__func__
    monkeypatch.setattr(config.ConfigValue, "get", classmethod(
        lambda cls, *args, **kwargs: reads.append(args[0]) or real_get(cls, *args, **kwargs)))
    assert [colour.get(area_id=area) for area in ("zenit", "kazan", "zenit")] == ["red", "grey", "red"]
    config.ConfigValue(name=NAME, value=json.dumps({"clauses": [], "default": "blue"}),
                       updated_at=config.clock.now()).save()  # another Lambda changed it
    ticks.now += 59
    assert colour.get(area_id="zenit") == "red"
    assert reads == [NAME]
    ticks.now += 1
    assert colour.get(area_id="zenit") == "blue"
    assert reads == [NAME, NAME]
    monkeypatch.undo()
    reload_settings()


def test_the_stored_shape_round_trips_whichever_way_it_is_dumped(colour):
    value = {"clauses": [clause({"all": [{"in": {"area_id": ["a"]}},
                                         {"percent": {"arg": "user_id", "from": 10, "to": 20}}]}, "x", "t")],
             "default": "grey"}
    parsed = colour.validate(value)
    assert json.loads(parsed.model_dump_json()) == value == colour.dump(parsed)  # `in`, `from`: never `in_`
    assert colour.validate(json.loads(parsed.model_dump_json())) == parsed
