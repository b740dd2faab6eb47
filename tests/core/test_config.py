"""Dynamic configs: defaults in code, stored values validated, a broken stored value never breaks a reader,
and the per-process cache (CONFIG_CACHE_SECONDS) delays changes made behind its back, and only those."""
from __future__ import annotations

import datetime as dt
import json
import types

import pytest

from chalicelib.core import config
from chalicelib.core.settings import get_settings, reload_settings
from chalicelib.route_sharing.schemas import CORP_NAMES, KEEP_AFTER_FINISH_HOURS, MAX_ORDER_DAYS

T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.timezone.utc)
NAME = KEEP_AFTER_FINISH_HOURS.name  # int, 1..720, default 24


def store(name: str, text: str) -> None:
    """Write straight into the table, as an old deployment (or a hand edit) could have."""
    config.ConfigValue(name=name, value=text, updated_at=T0).save()


def test_a_value_never_stored_is_the_default_and_a_stored_one_is_read(aws_mock):
    assert KEEP_AFTER_FINISH_HOURS.get() == 24
    assert config.read(NAME)["is_default"] is True
    store(NAME, "5")
    assert KEEP_AFTER_FINISH_HOURS.get() == 5
    assert config.read(NAME) == {"name": NAME, "kind": "config", "value": 5, "is_default": False,
                                 "description": KEEP_AFTER_FINISH_HOURS.description}


def test_a_stored_value_that_no_longer_validates_falls_back_to_the_default(aws_mock, capsys):
    for text in ("0", "9999", '"many"', "not json", "", "null", '{"hours": 5}'):
        store(NAME, text)
        capsys.readouterr()
        assert KEEP_AFTER_FINISH_HOURS.get() == 24, text
        logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [(line["event"], line["config"]) for line in logged] == [("config.stored_value_invalid", NAME)]
        assert config.read(NAME)["is_default"] is True


def test_a_stored_mapping_with_an_invalid_entry_falls_back_whole(aws_mock):
    store(CORP_NAMES.name, json.dumps({"corp-1": "Магазин", "corp-2": ""}))
    assert CORP_NAMES.get() == {}


def test_write_validates_and_refuses_a_bad_value_without_storing_it(aws_mock):
    with pytest.raises(Exception) as raised:
        config.write(NAME, 0)
    assert raised.value.status == 400 and raised.value.code == "invalid_config_value"
    assert config.read(NAME)["is_default"] is True
    assert config.write(NAME, 12)["value"] == 12
    assert KEEP_AFTER_FINISH_HOURS.get() == 12


def test_an_unknown_config_is_not_found():
    with pytest.raises(Exception) as raised:
        config.read("no_such_config")
    assert raised.value.status == 404 and raised.value.code == "config_not_found"


class FakeMonotonic:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def cached_for_a_minute(aws_mock):
    """CONFIG_CACHE_SECONDS=60 and a hand-moved monotonic clock for the cache; settings restored after."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONFIG_CACHE_SECONDS", "60")
        reload_settings()
        assert get_settings().config_cache_seconds == 60
        ticks = FakeMonotonic()
        patch.setattr(config, "time", types.SimpleNamespace(monotonic=ticks))
        config.forget_all_caches()
        yield ticks
    reload_settings()
    config.forget_all_caches()


@pytest.fixture
def count_reads(monkeypatch):
    reads = []
    real_get = config.ConfigValue.get.__func__

    def counting_get(cls, *args, **kwargs):
        reads.append(args[0] if args else kwargs.get("hash_key"))
        return real_get(cls, *args, **kwargs)

    monkeypatch.setattr(config.ConfigValue, "get", classmethod(counting_get))
    return reads


def test_a_cached_value_is_not_read_again_until_the_cache_time_passes(cached_for_a_minute, count_reads):
    ticks = cached_for_a_minute
    store(NAME, "5")
    assert KEEP_AFTER_FINISH_HOURS.get() == 5
    store(NAME, "6")  # behind the cache's back (another Lambda wrote it)
    ticks.now += 59
    assert KEEP_AFTER_FINISH_HOURS.get() == 5
    assert count_reads == [NAME]
    ticks.now += 1
    assert KEEP_AFTER_FINISH_HOURS.get() == 6
    assert count_reads == [NAME, NAME]


def test_the_default_is_cached_too(cached_for_a_minute, count_reads):
    assert KEEP_AFTER_FINISH_HOURS.get() == 24
    assert KEEP_AFTER_FINISH_HOURS.get() == 24
    assert count_reads == [NAME]


def test_a_write_in_this_process_is_seen_at_once_despite_the_cache(cached_for_a_minute):
    assert KEEP_AFTER_FINISH_HOURS.get() == 24
    config.write(NAME, 3)
    assert KEEP_AFTER_FINISH_HOURS.get() == 3


def test_with_cache_seconds_zero_every_get_reads_the_table(aws_mock, count_reads):
    assert get_settings().config_cache_seconds == 0
    store(NAME, "5")
    assert KEEP_AFTER_FINISH_HOURS.get() == 5
    store(NAME, "6")
    assert KEEP_AFTER_FINISH_HOURS.get() == 6
    assert count_reads == [NAME, NAME]


def test_a_config_changed_through_the_api_reaches_readers(client):
    answer = client.http.put(f"/internal/v1/configs/{NAME}", headers={"Content-Type": "application/json"},
                             body=json.dumps({"value": 48}))
    assert answer.status_code == 200, answer.body
    assert KEEP_AFTER_FINISH_HOURS.get() == 48
    store(NAME, '"broken"')
    answer = client.http.get(f"/internal/v1/configs/{NAME}")
    assert answer.status_code == 200
    assert answer.json_body["value"] == 24 and answer.json_body["is_default"] is True


def test_every_config_default_is_valid_and_reads_back_through_the_api(client):
    """Defaults are raw data validated on first use (not at import): each must validate, and what GET shows
    for it must be accepted by PUT unchanged."""
    for name, definition in sorted(config.REGISTRY.items()):
        shown = client.http.get(f"/internal/v1/configs/{name}")
        assert shown.status_code == 200 and shown.json_body["is_default"] is True, (name, shown.json_body)
        stored = client.http.put(f"/internal/v1/configs/{name}", body=json.dumps({"value": shown.json_body["value"]}),
                                 headers={"Content-Type": "application/json"})
        assert stored.status_code == 200, (name, stored.json_body)
        assert stored.json_body["value"] == shown.json_body["value"], name


def test_warm_up_caches_the_named_configs_from_one_read_as_get_would(cached_for_a_minute, monkeypatch):
    """An API function's init phase: the configs its routes declare, read together; afterwards get() asks DynamoDB
    nothing for them (stored, invalid-so-default, never stored alike), and a config not named is read when used."""
    from chalicelib.route_sharing.schemas import SCREEN_TEXTS

    store(NAME, "5")
    store(CORP_NAMES.name, '"not a mapping"')
    store(MAX_ORDER_DAYS.name, "3")
    config.forget_all_caches()
    reads = []
    original_get, original_batch = config.ConfigValue.get, config.ConfigValue.batch_get
    monkeypatch.setattr(config.ConfigValue, "get", classmethod(
        lambda cls, name, *a, **k: reads.append(("get", name)) or original_get(name, *a, **k)))
    monkeypatch.setattr(config.ConfigValue, "batch_get", classmethod(
        lambda cls, keys, *a, **k: reads.append(("batch", sorted(keys))) or original_batch(keys, *a, **k)))

    config.warm_up([NAME, CORP_NAMES.name, SCREEN_TEXTS.name, NAME])
    assert reads == [("batch", sorted([NAME, CORP_NAMES.name, SCREEN_TEXTS.name]))]
    assert KEEP_AFTER_FINISH_HOURS.get() == 5
    assert CORP_NAMES.get() == CORP_NAMES.default  # invalid in the table: the default, as get() would answer
    assert SCREEN_TEXTS.get() == SCREEN_TEXTS.default  # never stored
    assert len(reads) == 1
    assert MAX_ORDER_DAYS.get() == 3  # not named: read when first used
    assert reads[1:] == [("get", MAX_ORDER_DAYS.name)]


def test_warm_up_gives_up_quietly_when_the_read_fails(cached_for_a_minute, monkeypatch, capsys):
    def unreachable(cls, keys, *args, **kwargs):
        raise ConnectionError("no route to DynamoDB")

    monkeypatch.setattr(config.ConfigValue, "batch_get", classmethod(unreachable))
    config.forget_all_caches()
    config.warm_up([NAME])
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["event"] for line in logged] == ["config.warm_up_stopped"]
    store(NAME, "7")
    assert KEEP_AFTER_FINISH_HOURS.get() == 7  # nothing was cached (not even the default): read now, as ever


def test_what_warm_up_read_is_used_only_within_the_cache_time(cached_for_a_minute):
    """A function that starts and gets its first call a minute later reads the config again: warm_up's read is
    as old as a cached value would be."""
    store(NAME, "5")
    config.warm_up([NAME])
    store(NAME, "6")
    assert KEEP_AFTER_FINISH_HOURS.get() == 5
    cached_for_a_minute.now += 61
    assert KEEP_AFTER_FINISH_HOURS.get() == 6
