"""Errors the API answers with: DRF's, plus the model's and the database's.

A Django ``ValidationError`` raised by a model's ``full_clean()`` (inside an
action or a service) is a 400 keyed by field; deleting an object that others
still point at is a 409 naming them. Anything else unexpected stays a 500, so
that the fuzzing run sees it.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError, RestrictedError
from django.http import JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


def validation_detail(error: DjangoValidationError) -> dict | list:
    """A model ValidationError as DRF's error body (``__all__`` renamed)."""
    if hasattr(error, "error_dict"):
        return {
            (api_settings.NON_FIELD_ERRORS_KEY if key == "__all__" else key): [
                message for e in errors for message in e.messages
            ]
            for key, errors in error.error_dict.items()
        }
    return {api_settings.NON_FIELD_ERRORS_KEY: error.messages}


def too_big_detail() -> str:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return (
        f"The request body is larger than the {limit:,} bytes the API takes "
        f"(DATA_UPLOAD_MAX_MEMORY_SIZE): send less."
    )


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        exc = exceptions.ParseError(too_big_detail())
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(validation_detail(exc))
    elif isinstance(exc, ProtectedError | RestrictedError):
        blocking = sorted({str(o) for o in exc.args[1]})[:10]
        exc = Conflict(
            f"It is still used by: {', '.join(blocking)}. Remove or move those first."
        )
    return drf_exception_handler(exc, context)


def bad_request(request, exception):
    """The site's 400: JSON under ``/api/`` (a client reads it), else the page.

    Django answers a refused request (a body over
    ``DATA_UPLOAD_MAX_MEMORY_SIZE``, a bad Host header) here, before any API
    view runs.
    """
    if request.path.startswith("/api/"):
        if isinstance(exception, RequestDataTooBig):
            detail = too_big_detail()
        elif isinstance(exception, SuspiciousOperation):
            detail = "The request was refused as malformed."
        else:
            detail = "Bad request."
        return JsonResponse({"detail": detail}, status=400)
    return defaults.bad_request(request, exception)


def not_found(request, exception):
    """The site's 404: JSON under ``/api/`` (a client reads it), else the page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)
