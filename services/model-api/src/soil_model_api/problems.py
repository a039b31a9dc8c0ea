"""A rejected request and its FastAPI-shaped error details: ``{"detail": [{"loc", "msg", "type"}]}``."""

from __future__ import annotations

from typing import Any

MAX_REPORTED = 10  # errors listed per response; the count says how many there were in all


class InvalidRequest(Exception):
    """A rejected request: HTTP status plus FastAPI-style error details."""

    def __init__(self, status: int, errors: list[dict[str, Any]], headers: dict[str, str] | None = None):
        super().__init__(errors[0]["msg"] if errors else "invalid request")
        self.status = status
        self.errors = errors
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return {"detail": self.errors}


def problem(loc: list[str | int], msg: str, kind: str) -> dict[str, Any]:
    return {"loc": ["body", *loc], "msg": msg, "type": kind}


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages."""
    if isinstance(value, bool):
        return "boolean"
    return {str: "string", type(None): "null", list: "array", dict: "object", int: "number",
            float: "number"}.get(type(value), type(value).__name__)


def with_count(errors: list[dict[str, Any]], total: int) -> list[dict[str, Any]]:
    """``errors`` (at most MAX_REPORTED), the last one saying how many more of ``total`` there were."""
    if total > len(errors):
        errors[-1] = {**errors[-1], "msg": errors[-1]["msg"] + f" (and {total - len(errors)} more problems)"}
    return errors
