"""One DynamoDB client per process, however many tables: PynamoDB would make one per table."""
from __future__ import annotations

import datetime as dt

from botocore.config import Config

from chalicelib.codedispatch.models import AreaCode
from chalicelib.core import aws, dynamo
from chalicelib.core.config import ConfigValue
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
