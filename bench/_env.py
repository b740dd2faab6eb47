"""Environment every bench sets before importing the app (PynamoDB reads it at import): fake credentials,
no emulator unless one is given, configs cached as in a warm Lambda. Imported first by each bench script."""
from __future__ import annotations

import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def prepare(endpoint_url: str | None = None, **overrides: str) -> pathlib.Path:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update({
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
        "APP_STAGE": "bench", "CONFIG_CACHE_SECONDS": "300", "LOG_LEVEL": "WARNING",
        **({"AWS_ENDPOINT_URL": endpoint_url} if endpoint_url else {}),
        **overrides,
    })
    return ROOT


def deliver(client, function: str, queue: str, bodies: list[dict], tag: str) -> tuple[float, int]:
    """Hand `bodies` to the SQS consumer `function` in batches of 10, as the event source mapping would, with
    distinct message ids; returns (seconds, failed records)."""
    import json
    import time

    started, failed = time.perf_counter(), 0
    for start in range(0, len(bodies), 10):
        chunk = bodies[start:start + 10]
        event = client.events.generate_sqs_event(message_bodies=[json.dumps(b) for b in chunk], queue_name=queue)
        for index, record in enumerate(event["Records"]):
            record["messageId"] = f"{tag}-{start + index}"
        failed += len(client.lambda_.invoke(function, event).payload["batchItemFailures"])
    return time.perf_counter() - started, failed


def create_tables(stage: str = "local") -> None:
    """Every table of the app, as the deploy template defines it (TTL is switched on apart there: left off)."""
    from chalicelib.core import aws
    from deploy.template import _all_tables, table_resource

    dynamodb = aws.client("dynamodb")
    for model in _all_tables():
        properties = dict(table_resource(model, stage=stage)["Properties"])
        properties.pop("TimeToLiveSpecification", None)
        dynamodb.create_table(**properties)


def fresh_tables() -> None:
    """Process caches dropped and every table made again, empty (between the cases of a bench, under moto)."""
    from chalicelib.core import aws, config, http
    from chalicelib.core.settings import reload_settings
    from deploy.template import _all_tables

    reload_settings()
    aws.reset_clients()
    http.reset_sessions()
    config.forget_all_caches()
    for model in _all_tables():
        model._connection = None
        if model.exists():
            model.delete_table()
        model.create_table(wait=True)
