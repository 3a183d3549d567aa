"""The one place where errors become HTTP answers: every status code of a domain error is here.

Below `api/`, services and runs raise domain errors (or return results) and know nothing of
HTTP; `install_error_handlers` maps each to its status and body. Error bodies never echo a long
input: every HTTPException's detail is cut like a 422's. A route's message may quote what the
client sent (`symbol 'xxx…' is not in the universe`, a portfolio id from the path); the request
line alone can be 60,000 characters, and an answer that repeats it in full costs the server the
bytes and helps nobody.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from symbol_pipeline.api.auth import UNAUTHORISED_DETAIL, key_of
from symbol_pipeline.api.limits import short_message, validation_error_handler
from symbol_pipeline.config import IMPORT_MAX_ROWS_ENV
from symbol_pipeline.runs.requests import DaemonNotServingError, OpenRequestError
from symbol_pipeline.services import portfolio as service


async def short_http_exception_handler(request: Request, exc: HTTPException) -> Response:
    """FastAPI's handler, with a text detail cut to `short_message`'s length."""
    if isinstance(exc.detail, str):
        exc.detail = short_message(exc.detail)
    return await http_exception_handler(request, exc)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


async def _not_found(_: Request, exc: Exception) -> Response:
    return _error(404, short_message(str(exc)))  # a message may quote the path


async def _revoked(request: Request, _: Exception) -> Response:
    # The key was accepted from this process's memory and found revoked by the read's own check.
    hashed = key_of(request)
    if hashed is not None:
        service.forget_key(hashed)
    return JSONResponse({"detail": UNAUTHORISED_DETAIL}, status_code=401, headers={"WWW-Authenticate": "Bearer"})


async def _invalid(_: Request, exc: Exception) -> Response:
    return _error(422, short_message(str(exc)))  # a message may quote the input


async def _too_many_rows(_: Request, exc: Exception) -> Response:
    return _error(413, f"{exc}: the limit is {IMPORT_MAX_ROWS_ENV}")


async def _conflict(_: Request, exc: Exception) -> Response:
    return _error(409, str(exc))


async def _no_data(_: Request, exc: Exception) -> Response:
    return _error(409, short_message(str(exc)))


async def _no_daemon(_: Request, exc: Exception) -> Response:
    # A request row that no daemon reads would never run: refused rather than accepted and lost.
    return _error(503, str(exc))


async def _request_open(_: Request, exc: OpenRequestError) -> Response:
    row = exc.request
    return JSONResponse({
        "detail": f"a {row.kind} run for {row.first_date} is already {row.status}",
        "request_id": row.id or None,  # 0: a run the schedule started, with no request row
        "run_id": row.run_ids[-1] if row.run_ids else None,
    }, status_code=409)


def install_error_handlers(app: FastAPI) -> None:
    """Map a request that fails validation (422, input cut short), HTTPException (cut short) and every
    domain error to its answer."""
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(HTTPException, short_http_exception_handler)
    app.add_exception_handler(service.NotFoundError, _not_found)
    app.add_exception_handler(service.KeyRevokedError, _revoked)
    app.add_exception_handler(service.ValidationError, _invalid)
    app.add_exception_handler(service.TooManyRowsError, _too_many_rows)
    app.add_exception_handler(service.ConflictError, _conflict)
    app.add_exception_handler(service.StressDataError, _no_data)
    app.add_exception_handler(DaemonNotServingError, _no_daemon)
    app.add_exception_handler(OpenRequestError, _request_open)
