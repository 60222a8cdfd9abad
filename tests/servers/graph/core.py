"""Request/response records and Graph's error shape, shared by the routes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    method: str
    path: str  # without the query string, percent-decoded per segment
    segments: list[str]
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    base: str  # "https://127.0.0.1:PORT"

    def json(self) -> Any:
        ctype = self.headers.get("content-type", "")
        if not ctype.lower().startswith("application/json"):
            raise GraphError(
                415,
                "UnsupportedMediaType",
                f"Content-Type {ctype!r} is not supported; use application/json",
            )
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise GraphError(
                400, "RequestBodyRead", f"Invalid JSON in the request body: {e}"
            ) from e


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without an answer


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    hdrs = {"Content-Type": "application/json; odata.metadata=minimal; charset=utf-8"}
    hdrs.update(headers or {})
    return Response(status, json.dumps(payload).encode("utf-8"), hdrs)


class GraphError(Exception):
    """Graph's documented error body: {"error": {"code", "message", "innerError"}}."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def response(self, request_id: str) -> Response:
        body = {
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {"request-id": request_id, "client-request-id": request_id},
            }
        }
        return json_response(self.status, body, self.headers)


class OAuthError(Exception):
    """Entra ID's token-endpoint error body (RFC 6749 section 5.2 plus AADSTS codes)."""

    def __init__(self, status: int, error: str, aadsts: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.aadsts = aadsts
        self.description = description

    def response(self) -> Response:
        return json_response(
            self.status,
            {
                "error": self.error,
                "error_description": f"AADSTS{self.aadsts}: {self.description}",
                "error_codes": [self.aadsts],
            },
        )


def not_found(what: str = "") -> GraphError:
    return GraphError(
        404, "ErrorItemNotFound", what or "The specified object was not found in the store."
    )


def bad_request(message: str, code: str = "ErrorInvalidRequest") -> GraphError:
    return GraphError(400, code, message)
