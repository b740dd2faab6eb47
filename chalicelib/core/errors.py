"""Domain errors. Services raise these; core maps them to HTTP answers and queue outcomes in one place."""
from __future__ import annotations


class AppError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, details: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details

    def body(self) -> dict:
        body = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class BadRequest(AppError):
    status = 400
    code = "bad_request"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"


class Forbidden(AppError):
    """The caller is known but may not act on this resource (e.g. not the claim's performer)."""

    status = 403
    code = "forbidden"


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class TooManyRequests(AppError):
    status = 429
    code = "too_many_requests"


class UpstreamUnavailable(AppError):
    """An upstream timed out, refused, or kept answering 5xx after the retries."""

    status = 503
    code = "upstream_unavailable"


class UpstreamRejected(AppError):
    """An upstream answered a definite 4xx; `upstream_status` says which."""

    status = 502
    code = "upstream_rejected"

    def __init__(self, message: str, *, upstream_status: int, **kwargs):
        super().__init__(message, **kwargs)
        self.upstream_status = upstream_status


def validation_details(error) -> dict:
    """A pydantic ValidationError as locations and reasons only: the rejected input may hold a phone number."""
    return {"errors": [{"loc": ".".join(str(part) for part in e["loc"]), "msg": e["msg"]} for e in error.errors()]}


def describe(error: BaseException) -> str:
    """What a log line may say about an exception: our own messages, never a library's repr of the input."""
    from pydantic import ValidationError

    if isinstance(error, AppError):
        return f"{type(error).__name__}: {error.code}: {error.message}"
    if isinstance(error, ValidationError):
        return f"ValidationError: {validation_details(error)['errors']}"
    code = getattr(error, "cause_response_code", None)  # PynamoDB / botocore failures
    return f"{type(error).__name__}" + (f": {code}" if code else "")
