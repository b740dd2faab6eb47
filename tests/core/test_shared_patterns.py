"""The patterns every service uses from core: conditional writes, live reads, secrets, upstream answers, jobs."""
from __future__ import annotations

import datetime as dt

import pytest
from pydantic import BaseModel
from pynamodb.exceptions import UpdateError

from chalicelib.core import aws, clock, dynamo, http, jobs, lease
from chalicelib.core.errors import UpstreamUnavailable
from chalicelib.core.secrets import SecureParameter
from chalicelib.core.storage import get_live
from chalicelib.picker_orders.models import PickerPhone

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)


def _phone(order_nr: str, expires_at: dt.datetime) -> PickerPhone:
    return PickerPhone(order_nr, "picker-1", phone="+70000000000", phone_expires_at=T0, last_event="1",
                       updated_at=T0, expires_at=expires_at)


def test_conditional_writes_say_whether_they_applied(aws_mock):
    clock.freeze(T0)
    phone = _phone("o1", T0 + dt.timedelta(days=1))
    assert dynamo.save_if(phone, PickerPhone.order_nr.does_not_exist())
    assert not dynamo.save_if(phone, PickerPhone.order_nr.does_not_exist())  # a replay: nothing written
    assert dynamo.update_if(phone, [PickerPhone.last_event.set("2")], PickerPhone.last_event < "2")
    assert not dynamo.update_if(phone, [PickerPhone.last_event.set("1")], PickerPhone.last_event < "1")
    assert PickerPhone.get("o1", "picker-1").last_event == "2"
    assert dynamo.transact_if(lambda tx: tx.update(phone, actions=[PickerPhone.phone.set("+71111111111")],
                                                   condition=PickerPhone.last_event == "2"))
    assert not dynamo.transact_if(lambda tx: tx.update(phone, actions=[PickerPhone.phone.set("+7")],
                                                       condition=PickerPhone.last_event == "9"))
    assert not dynamo.delete_if(phone, PickerPhone.last_event == "9")
    assert dynamo.delete_if(phone, PickerPhone.last_event == "2")


def test_a_failure_other_than_the_condition_still_raises(aws_mock, monkeypatch):
    phone = _phone("o2", T0 + dt.timedelta(days=1))

    def throttled(*args, **kwargs):
        raise UpdateError("throttled", cause=Exception("ProvisionedThroughputExceededException"))

    monkeypatch.setattr(PickerPhone, "update", throttled)
    with pytest.raises(UpdateError):
        dynamo.update_if(phone, [PickerPhone.last_event.set("2")], PickerPhone.last_event < "2")


def test_a_live_read_hides_what_expired_but_is_not_swept_yet(aws_mock):
    clock.freeze(T0)
    _phone("live", T0 + dt.timedelta(seconds=1)).save()
    _phone("expired", T0).save()  # DynamoDB's TTL deletes late: the item is still there
    assert get_live(PickerPhone, "live", "picker-1").order_nr == "live"
    assert get_live(PickerPhone, "expired", "picker-1") is None
    assert get_live(PickerPhone, "absent", "picker-1") is None


def test_a_secret_is_read_once_for_a_while_and_fails_as_its_upstream(aws_mock, monkeypatch):
    secret = SecureParameter("TEST_SECRET_PARAMETER", "test_secret_unavailable", cache_seconds=60)
    with pytest.raises(UpstreamUnavailable) as unset:
        secret.read()
    assert unset.value.code == "test_secret_unavailable"
    monkeypatch.setenv("TEST_SECRET_PARAMETER", "/taxi-delivery/test/secret")
    with pytest.raises(UpstreamUnavailable):  # not in SSM (yet)
        secret.read()
    ssm = aws.client("ssm")
    ssm.put_parameter(Name="/taxi-delivery/test/secret", Type="SecureString", Value=" s3cret ")
    assert secret.read() == "s3cret"
    ssm.put_parameter(Name="/taxi-delivery/test/secret", Type="SecureString", Value="rotated", Overwrite=True)
    assert secret.read() == "s3cret"  # cached for cache_seconds
    secret.forget()
    assert secret.read() == "rotated"


class _Answer(BaseModel):
    at: dt.datetime
    count: int


def test_an_upstream_answer_that_does_not_validate_is_that_upstream_failing():
    assert http.answer_as("tracker", _Answer, {"at": T0.isoformat(), "count": 1}).count == 1
    for body in ({"count": 1}, {"at": T0.isoformat(), "count": "many"}, [], None):
        with pytest.raises(UpstreamUnavailable):
            http.answer_as("tracker", _Answer, body)


def test_a_scheduled_job_runs_alone_with_a_deadline_and_counts_its_items(aws_mock):
    ran: list[float] = []

    @jobs.scheduled_job(default_seconds=12)
    def some_job(deadline: float) -> int:
        ran.append(deadline)
        assert lease.acquire("some_job", 5) is None  # the job's own lease is held while it runs
        return 3

    assert some_job.__name__ == "some_job"  # Chalice names the Lambda function after it
    assert some_job(None) == 3 and len(ran) == 1
    lease.acquire("some_job", 60)  # another runner holds it now
    assert some_job(None) is None and len(ran) == 1
