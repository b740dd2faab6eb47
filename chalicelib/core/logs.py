"""Structured logs: one JSON line per event.

Lambda installs no root handler under the emulator, and Chalice's `app.log` is silent below ERROR,
so modules log through `get_logger(__name__).event(...)`, which always reaches stdout (CloudWatch).
Fields whose names suggest secrets or personal data are masked, so a careless call cannot leak them.
"""
from __future__ import annotations

import json
import logging
import sys
import time
import traceback

_SENSITIVE = ("phone", "token", "license", "licence", "password", "secret", "authorization")
_configured = False


def _mask(key: str, value):
    if any(word in key.lower() for word in _SENSITIVE) and not key.lower().endswith("_id") and value is not None:
        return "***"
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None) or {}
        line.update({key: _mask(key, value) for key, value in fields.items()})
        if record.exc_info and record.exc_info[1] is not None:
            from .errors import describe

            # Where it broke and what kind of failure, never the exception's text: it may quote the input.
            line["error"] = describe(record.exc_info[1])
            frames = traceback.extract_tb(record.exc_info[2])
            if frames:
                line["where"] = [f"{f.filename.rsplit('/', 2)[-2:][-1]}:{f.lineno} {f.name}" for f in frames[-4:]]
        return json.dumps(line, ensure_ascii=False, default=str)


class EventLogger(logging.LoggerAdapter):
    """`log.event("sharing_key.saved", order_id=...)`: the message is the event name, kwargs are fields."""

    def event(self, name: str, level: int = logging.INFO, exc_info=None, metrics: dict | None = None,
              **fields) -> None:
        """`metrics=core.metrics.count(...)` makes the line an EMF record too (its dimensions are fields)."""
        if metrics:
            fields = {**fields, **metrics}
        self.logger.log(level, name, extra={"fields": fields}, exc_info=exc_info)

    def warning_event(self, name: str, **fields) -> None:
        self.event(name, logging.WARNING, **fields)

    def error_event(self, name: str, exc_info=None, **fields) -> None:
        self.event(name, logging.ERROR, exc_info=exc_info, **fields)


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is now (Lambda's capture, a test's capture), not the one at import."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _value):
        pass


def configure(level: str = "INFO") -> None:
    global _configured
    if _configured:
        return
    handler = _StdoutHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("chalicelib")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    logging.Formatter.converter = time.gmtime
    _configured = True


def get_logger(name: str) -> EventLogger:
    from .settings import get_settings

    configure(get_settings().log_level)
    return EventLogger(logging.getLogger(name), {})
