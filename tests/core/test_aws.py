"""One DynamoDB client per process, however many tables: PynamoDB would make one per table."""
from __future__ import annotations

import datetime as dt

import pytest
from botocore.config import Config

from chalicelib.codedispatch.models import AreaCode
from chalicelib.core import aws, dynamo
from chalicelib.core.config import ConfigValue
from chalicelib.core.errors import BadRequest
from chalicelib.deptrans.schemas import SENDER_CONCURRENCY
from chalicelib.route_sharing.models import SharingKeyItem


def _client_of(model):
    return model._get_connection().connection.client


def test_every_table_and_the_transactions_share_one_client(aws_mock):
    clients = {id(_client_of(model)) for model in (ConfigValue, SharingKeyItem, AreaCode)}
    clients.add(id(dynamo._connection().client))
    assert len(clients) == 1


def test_the_shared_client_works_for_every_table(aws_mock):
    ConfigValue(name="shared-client", value="1", updated_at=dt.datetime.now(dt.timezone.utc)).save()
    assert ConfigValue.get("shared-client").value == "1"
    assert SharingKeyItem.count() == 0


def test_different_settings_get_different_clients(aws_mock):
    session = aws.botocore_session()
    fast = session.create_client("dynamodb", "us-east-1", config=Config(read_timeout=1))
    slow = session.create_client("dynamodb", "us-east-1", config=Config(read_timeout=9))
    assert fast is not slow
    assert session.create_client("dynamodb", "us-east-1", config=Config(read_timeout=1)) is fast
    # Own credentials: never shared.
    assert session.create_client("dynamodb", "us-east-1", aws_access_key_id="a", aws_secret_access_key="b") \
        is not session.create_client("dynamodb", "us-east-1", aws_access_key_id="a", aws_secret_access_key="b")


def test_reset_drops_the_shared_clients(aws_mock):
    session = aws.botocore_session()
    first = session.create_client("dynamodb", "us-east-1", config=Config(read_timeout=1))
    aws.reset_clients()
    assert aws.shared_clients() == []
    assert session.create_client("dynamodb", "us-east-1", config=Config(read_timeout=1)) is not first


def test_the_shared_pool_holds_the_widest_thread_pool_that_writes(aws_mock):
    """The deptrans sender saves from up to deptrans_sender_concurrency threads at once: past the pool's size
    urllib3 would drop and reopen connections (a TLS handshake each on AWS)."""
    pool = _client_of(ConfigValue).meta.config.max_pool_connections
    assert dynamo._connection().client.meta.config.max_pool_connections == pool
    with pytest.raises(BadRequest):
        SENDER_CONCURRENCY.validate(pool + 1)
