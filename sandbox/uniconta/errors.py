"""The one error shape of the Uniconta sandbox: `{"ErrorCode", "Message", "Field"}`.

`ErrorCode` is always a member name of Uniconta's `ErrorCodes` enum (reference §4); the HTTP status
and the body shape are our assumption, because the official REST error format was not found.
"""

from __future__ import annotations

from flask import Response, jsonify


class UnicontaError(Exception):
    """An API error answered as `status` with the one error body."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}

    def body(self) -> dict:
        return {"ErrorCode": self.code, "Message": self.message, "Field": self.field}

    def response(self) -> Response:
        return error_response(self.status, self.code, self.message, self.field, self.headers)


def error_response(status: int, code: str, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    response = jsonify({"ErrorCode": code, "Message": message, "Field": field})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def bad_request(code: str, message: str, field: str | None = None) -> UnicontaError:
    return UnicontaError(400, code, message, field)


def not_found(message: str, field: str | None = None) -> UnicontaError:
    return UnicontaError(404, "CouldNotFind", message, field)
