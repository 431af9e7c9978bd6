"""Error bodies: every error is ``{"error": code, "message": ..., "problems"?: [...]}``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from momoflow.business_requests import FieldProblem


def problems_response(problems: Sequence[FieldProblem]) -> JSONResponse:
    """422 listing every broken rule, by field."""
    count = len(problems)
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={
            "error": "validation_failed",
            "message": f"{count} problem{'s' if count != 1 else ''} in the request; "
            "nothing was started",
            "problems": [
                {"field": p.field, "rule": p.rule, "message": p.message} for p in problems
            ],
        },
    )


def _field_name(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def _json_problem(body: object, err: Mapping[str, Any]) -> FieldProblem:
    """Where the body stops being JSON, as a line and column (FastAPI gives a character
    offset as the error's location, which reads like a field name)."""
    loc = err.get("loc", ())
    position = loc[-1] if loc and isinstance(loc[-1], int) else None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    reason = str(err.get("ctx", {}).get("error", "")).strip()
    where = "the body is not valid JSON"
    if isinstance(text, str) and position is not None:
        line = text.count("\n", 0, position) + 1
        column = position - text.rfind("\n", 0, position)
        where = f"invalid JSON at line {line}, column {column}"
    return FieldProblem(
        field="body", rule="json_invalid", message=f"{where}: {reason}" if reason else where
    )


async def _validation_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        _json_problem(exc.body, err)
        if err["type"] == "json_invalid"
        else FieldProblem(field=_field_name(err["loc"]), rule=err["type"], message=err["msg"])
        for err in exc.errors()
    ]
    return problems_response(problems)


async def _http_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    body = (
        exc.detail
        if isinstance(exc.detail, dict)
        else {"error": _code_for(exc.status_code), "message": str(exc.detail)}
    )
    return JSONResponse(
        status_code=exc.status_code, content=jsonable_encoder(body), headers=exc.headers
    )


def _code_for(status_code: int) -> str:
    return {
        404: "not_found",
        405: "method_not_allowed",
        413: "too_large",
        415: "unsupported_media_type",
    }.get(status_code, "http_error")


def install_error_handlers(app: FastAPI) -> None:
    """Use momoflow's error body everywhere."""
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(HTTPException, _http_handler)
