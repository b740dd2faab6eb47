"""The lease lock: one runner of a periodic job at a time; a crashed runner blocks it for at most the lease."""
from __future__ import annotations

import datetime as dt

import pytest

from chalicelib.core import clock, lease

T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def frozen(aws_mock):
    clock.freeze(T0)


def test_acquire_returns_a_token_and_a_second_runner_gets_nothing_while_held(frozen):
    token = lease.acquire("job", 60)
    assert token
    assert lease.acquire("job", 60) is None
    assert lease.acquire("job", 60, owner="runner-2") is None
    assert lease.Lease.get("job").owner == token
    # Another job's lease is its own; a given owner is the token.
    assert lease.acquire("other-job", 60, owner="runner-2") == "runner-2"


def test_an_expired_lease_is_taken_by_another_runner(frozen):
    first = lease.acquire("job", 60, owner="crashed")
    clock.advance(seconds=59)
    assert lease.acquire("job", 60, owner="runner-2") is None
    clock.advance(seconds=1)  # held_until reached
    second = lease.acquire("job", 60, owner="runner-2")
    assert second == "runner-2" and second != first
    assert lease.acquire("job", 60, owner="crashed") is None  # the late one does not get it back
    # ... and, finishing late, cannot release the new holder's lease.
    lease.release("job", "crashed")
    assert lease.acquire("job", 60, owner="third") is None
    assert lease.Lease.get("job").owner == "runner-2"


def test_release_by_a_non_owner_does_nothing_and_by_the_owner_frees_it(frozen):
    lease.acquire("job", 60, owner="runner-1")
    lease.release("job", "runner-2")
    assert lease.acquire("job", 60, owner="runner-2") is None
    assert lease.Lease.get("job").owner == "runner-1"
    lease.release("job", "runner-1")
    assert lease.acquire("job", 60, owner="runner-2") == "runner-2"
    # Releasing a lease nobody holds is harmless.
    lease.release("never-taken", "runner-1")
    assert lease.acquire("never-taken", 60) is not None


def test_single_runner_skips_while_another_runner_holds_the_lease(frozen, capsys):
    runs = []

    @lease.single_runner("nightly", 50)
    def job(value):
        runs.append(value)
        return value * 2

    lease.acquire("nightly", 50, owner="other-instance")
    capsys.readouterr()
    assert job(1) is None
    assert runs == []
    assert '"job.skipped_lease_held"' in capsys.readouterr().out
    clock.advance(seconds=50)  # the other instance crashed: its lease ran out
    assert job(2) == 4
    assert runs == [2]


def test_single_runner_holds_the_lease_while_running_and_releases_it_after(frozen):
    intruders = []

    @lease.single_runner("nightly", 50)
    def job(fail=False):
        intruders.append(lease.acquire("nightly", 50, owner="intruder"))  # while it runs: nobody else
        if fail:
            raise RuntimeError("boom")
        return "done"

    assert job() == "done"
    assert job() == "done"  # released: the next run goes too
    with pytest.raises(RuntimeError):
        job(fail=True)
    assert intruders == [None, None, None]
    assert lease.acquire("nightly", 50, owner="after") == "after"  # released after a failure as well
