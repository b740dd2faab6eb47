"""Least privilege, declared next to the code: what each Lambda function may touch.

Every Lambda function of the app gets its own IAM role; the build (deploy/roles.py) writes that role's policy
from these declarations and nothing else, so the code is the one source of truth for permissions as it is for
tables and queues. Each service declares its grants in `chalicelib/<service>/access.py`, data the build reads
(deploy/grants.py imports every one of them); no Lambda imports them, and this module only records them:

    # chalicelib/route_sharing/access.py
    from chalicelib.core.access import grant
    from chalicelib.core.config import ConfigValue

    from . import api, tasks
    from .models import PhoneKey, SharedOrder, SharingKeyItem

    # A blueprint's routes run in their service's API function (RouteSharingApi): its role gets the union of
    # the grants of that service's route blueprints (and the audit holds each blueprint's routes to its own).
    grant(api.bp, read=[ConfigValue, PhoneKey, SharingKeyItem, SharedOrder],
          write=[SharedOrder, SharingKeyItem, PhoneKey])
    # An event handler (queue consumer, schedule) is a Lambda of its own, named after the handler function.
    grant(tasks.save_sharing_keys, read=[ConfigValue, SharedOrder], write=[SharedOrder, SharingKeyItem, PhoneKey])

    # Other kinds of grant (names made up):
    grant(jobs.sync_registry, read=[ConfigValue, Registry], write=[Registry, Lease],   # a job with a lease
          send=["registry_events"],                                # a queue of the template it sends to
          parameters=["/taxi-delivery/{stage}/registry-credentials"],  # an SSM parameter ({stage}: the stage)
          secrets=["taxi-delivery/{stage}/registry-key"])          # a Secrets Manager secret

What a grant means, per resource (the actions themselves: deploy/grants.py):
- `read=[Model]`: GetItem, BatchGetItem, Query, ConditionCheckItem on the table (by its PynamoDB model, so the
  name comes from the model) and Query on each of its indexes. No Scan: declare none, use an index.
- `write=[Model]`: PutItem, UpdateItem, DeleteItem, BatchWriteItem, ConditionCheckItem on the table. A
  conditional write needs no read grant; a read-then-write needs both. DynamoDB transactions are checked item
  by item against these same actions (there is no "transaction" permission).
- `send=["queue"]`: SendMessage (and GetQueueUrl, which core.queues.send uses) on a queue of the template.
- The queue an @sqs_handler consumes is NOT declared: it follows from the handler itself (receive, delete,
  get attributes on that queue only).
- `parameters=["/name"]`: ssm:GetParameter on that SSM parameter; `secrets=["name"]`: secretsmanager:
  GetSecretValue on that secret (any version suffix). `{stage}` in a name is the stage the template is built
  for, e.g. `parameters=["/taxi-delivery/{stage}/krt-credentials"]`.
- Every function also gets, without declaring: writing its own log group, and X-Ray segments. A schedule
  also gets SendMessage on its own on-failure queue. An authorizer (`@bp.authorizer`) needs no grant at all:
  without one it gets logs and X-Ray only, which is what a gateway authorizer should have.

Grants add up: two `grant(...)` calls for the same function or blueprint are merged. A function or route
blueprint without a grant fails the template tests (tests/test_template.py) and gets no table or queue at all;
under `make test` (plugin tests/access_audit.py) a test fails when a handler calls DynamoDB, SQS, SSM or
Secrets Manager on anything its grant does not cover, as IAM would refuse it on AWS. Declare what the code
uses, not more: `pytest -v -p tests.access_audit tests/<service>` lists granted tables no test touched.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable


@dataclasses.dataclass
class Grant:
    """What one Lambda function (or one blueprint's routes) may touch."""

    read: set[type] = dataclasses.field(default_factory=set)
    write: set[type] = dataclasses.field(default_factory=set)
    send: set[str] = dataclasses.field(default_factory=set)
    parameters: set[str] = dataclasses.field(default_factory=set)
    secrets: set[str] = dataclasses.field(default_factory=set)

    def merge(self, other: "Grant") -> "Grant":
        return Grant(read=self.read | other.read, write=self.write | other.write, send=self.send | other.send,
                     parameters=self.parameters | other.parameters, secrets=self.secrets | other.secrets)

    def table_names(self, kind: str) -> set[str]:
        return {model.Meta.table_name for model in getattr(self, kind)}


# Event handlers by Chalice function name; route blueprints by the module that created them.
FUNCTION_GRANTS: dict[str, Grant] = {}
ROUTE_GRANTS: dict[str, Grant] = {}


def _is_table(model: Any) -> bool:
    return isinstance(model, type) and bool(getattr(getattr(model, "Meta", None), "table_name", None))


def grant(target: Any, *, read: Iterable[type] = (), write: Iterable[type] = (), send: Iterable[str] = (),
          parameters: Iterable[str] = (), secrets: Iterable[str] = ()) -> Grant:
    """Declare what `target` may touch: a route Blueprint (its routes, served by its service's API function), an
    event handler function as its decorator returned it, an authorizer, or a Chalice function name."""
    new = Grant(read=set(read), write=set(write), send=set(send), parameters=set(parameters), secrets=set(secrets))
    for model in new.read | new.write:
        if not _is_table(model):
            raise TypeError(f"grant({target!r}): {model!r} is not a table model")
    for name in new.parameters:
        if not name.startswith("/"):
            raise ValueError(f"grant({target!r}): SSM parameter names are absolute paths, got {name!r}")
    registry, key = _key(target)
    registry[key] = registry[key].merge(new) if key in registry else new
    return registry[key]


def _key(target: Any) -> tuple[dict[str, Grant], str]:
    if isinstance(target, str):
        return FUNCTION_GRANTS, target
    if hasattr(target, "_import_name"):  # a chalice Blueprint: its routes
        return ROUTE_GRANTS, target._import_name
    if isinstance(getattr(target, "name", None), str) and hasattr(target, "scopes"):  # a ChaliceAuthorizer
        return FUNCTION_GRANTS, target.name
    func = getattr(target, "func", target)  # Chalice wraps event handlers (EventSourceHandler.func)
    if hasattr(func, "__name__"):  # Chalice names an event handler's Lambda after the function
        return FUNCTION_GRANTS, func.__name__
    raise TypeError(f"grant() cannot tell which Lambda function {target!r} is")
