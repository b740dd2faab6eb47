"""Business metrics as CloudWatch Embedded Metric Format (EMF), inside the JSON log line of the event counted.

No extra call: CloudWatch Logs extracts the metric from the line Lambda already writes. A metric rides on the
log event that tells the same story:

    from chalicelib.core import metrics
    log.event("route_sharing.key_saved", order_id=..., metrics=metrics.count("route_sharing", "KeysSaved"))
    log.warning_event("scooters.claim_failed", claim_id=...,
                      metrics=metrics.count("scooters", "UpstreamFailures", upstream="cargo"))
    log.event("deptrans.feed_sent", metrics=metrics.counts("deptrans", {"StatusesSent": 12, "Batches": 1}))

- Namespace `TaxiDelivery`; dimensions: `service` (the package name: route_sharing, deptrans, ...) plus the
  keyword dimensions given (`upstream`, `queue`, `job`: low cardinality only, never an id: each distinct value
  is a separate billed metric). Dimension values are strings.
- Metric names are CamelCase nouns in the plural (`KeysSaved`, `EventsStale`): they sit at the top level of
  the line, beside its fields, so they must not clash with a field name (fields are snake_case).
- Never a phone, token or any personal value, as a dimension or a name.

Core already counts, for every service: queue messages done / failed / invalid per queue (core.queues),
upstream failures per upstream (core.http), job runs and skips (core.lease.single_runner). A service adds
its own domain counts on its own log lines, as above.

Powertools for AWS Lambda's Metrics writes the same format, but importing it took 27-58 ms here (measured
with chalice, boto3 and pydantic already loaded; this module: 0.2 ms) at every cold start, for a dozen lines
of dict building: not worth it.
"""
from __future__ import annotations

import time

NAMESPACE = "TaxiDelivery"
_UNITS = frozenset({"Count", "Milliseconds", "Seconds", "None"})


def counts(service: str, values: dict[str, float], *, unit: str = "Count", **dimensions: str) -> dict:
    """The fields that make a log line an EMF record of `values` for `service` (+ the given dimensions)."""
    if unit not in _UNITS:
        raise ValueError(f"unit {unit!r} is not one of {sorted(_UNITS)}")
    dims = {"service": str(service), **{name: str(value) for name, value in dimensions.items()}}
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [list(dims)],
                "Metrics": [{"Name": name, "Unit": unit} for name in values],
            }],
        },
        **dims,
        **values,
    }


def count(service: str, name: str, value: float = 1, **dimensions: str) -> dict:
    """One count, e.g. `metrics.count("codedispatch", "CodesWrong")`."""
    return counts(service, {name: value}, **dimensions)


def service_of(module: str) -> str:
    """`chalicelib.route_sharing.tasks` -> `route_sharing` (the service dimension of code in that package)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "chalicelib" else parts[0]
