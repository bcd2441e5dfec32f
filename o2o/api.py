"""One error shape for the API: {"code", "message", "fields"?}, with the status of the error.

Also the shared pieces every API view uses: cursor pagination with stable
ordering, a JSON parser that turns any unreadable body into a 400, the
ETag / If-Match helpers, and the OpenAPI documentation of the errors.

No input may produce a 500: besides the DRF and domain errors, values the
database refuses (out of range, not encodable) and oversized bodies are
answered as client errors here, after the service's transaction rolled back.
"""

from __future__ import annotations

import base64
import copy
import re
from datetime import timedelta
from datetime import timezone as dt_timezone
from urllib.parse import parse_qs

import django_filters
from django import forms
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import DataError
from django.http import Http404, JsonResponse
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import exceptions, parsers, serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from o2o.errors import DomainError, InvalidInput


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_code = "precondition_failed"
    default_detail = _("The resource changed since you read it (If-Match does not match its ETag).")


class PreconditionRequired(exceptions.APIException):
    status_code = status.HTTP_428_PRECONDITION_REQUIRED
    default_code = "precondition_required"
    default_detail = _("Send the version you read as If-Match to change this resource.")


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"
    default_detail = _("The request body is too large.")


_CODE_RENAMES = {"throttled": "rate_limited"}


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response(exc.as_dict(), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, (DataError, UnicodeError)):
        # A value the database cannot hold (a number out of range, text it cannot encode).
        message = gettext("A value is out of range or not valid.")
        exc = exceptions.ValidationError({"non_field_errors": [message]})
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = flatten_errors(exc.detail)
        first = next(iter(fields.values()), [""])
        code = UNKNOWN_FIELD if _has_code(exc.get_codes(), UNKNOWN_FIELD) else "invalid_input"
        response.data = {"code": code, "message": first[0] if first else "", "fields": fields}
        response.status_code = status.HTTP_400_BAD_REQUEST
    else:
        codes = exc.get_codes() if hasattr(exc, "get_codes") else "error"
        code = codes if isinstance(codes, str) else "error"
        response.data = {"code": _CODE_RENAMES.get(code, code), "message": str(exc.detail)}
    return response


def flatten_errors(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {"lines.0.qty": ["..."]}.

    Errors not about one field go under non_field_errors.
    """
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = str(key) if not prefix else (prefix if key == "non_field_errors" else f"{prefix}.{key}")
            out.update(flatten_errors(value, name))
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            if detail:
                out.setdefault(prefix or "non_field_errors", []).extend(str(item) for item in detail)
        else:
            for index, item in enumerate(detail):
                if item:
                    out.update(flatten_errors(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        out.setdefault(prefix or "non_field_errors", []).append(str(detail))
    return out


@csrf_exempt
def api_not_found(request, *args, **kwargs):
    """Any /api/v1/ path that names nothing: the API's 404, not the HTML page."""
    return JsonResponse({"code": "not_found", "message": gettext("Not found.")}, status=404)


# --- filters ------------------------------------------------------------------------------------

MAX_ID = 2**63 - 1


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField


def id_filter(**kwargs) -> IdFilter:
    """An integer id filter for a FilterSet (an unknown id simply matches nothing)."""
    return IdFilter(min_value=1, max_value=MAX_ID, **kwargs)


class UtcDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 time, handed to the database in UTC.

    PostgreSQL refuses offsets beyond ±15:59 that Python accepts, and a time at
    the edge of the calendar may not exist in UTC; both are a 400, not a database error.
    """

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(dt_timezone.utc)
        except (OverflowError, ValueError):
            raise forms.ValidationError(gettext("Enter a valid date/time."), code="invalid") from None


class DateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


def datetime_filter(**kwargs) -> DateTimeFilter:
    return DateTimeFilter(**kwargs)


def bool_filter(**kwargs) -> django_filters.TypedChoiceFilter:
    """true / false; anything else is a 400 (django-filter's BooleanFilter would ignore it)."""
    return django_filters.TypedChoiceFilter(choices=[("true", "true"), ("false", "false")],
                                            coerce=lambda value: value == "true", **kwargs)


# --- parsing ------------------------------------------------------------------------------------


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser; a body nested too deep to parse is a parse error too, not a crash."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(gettext("JSON parse error - nested too deeply.")) from None


UNKNOWN_FIELD = "unknown_field"


class StrictInput:
    """An input serializer that refuses keys it does not know (400 ``unknown_field``).

    DRF drops unknown keys silently, so a client that misspells ``coupon_code`` or sends a
    field this version does not take would get its order placed without it.  Mixed in
    before ``serializers.Serializer``; nested input serializers check their own keys.
    """

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(str(key) for key in data if key not in self.fields)
            if unknown:
                message = gettext("Unknown field.")
                raise serializers.ValidationError(
                    {key: [serializers.ErrorDetail(message, code=UNKNOWN_FIELD)] for key in unknown})
        return super().to_internal_value(data)


class ModelFieldsOnce:
    """A ModelSerializer that works its fields out from the model once per class, not per instance.

    DRF's ModelSerializer introspects the model (field kwargs, validators, relations) every time a
    serializer is made, which is most of the cost of rendering an order.  The fields it builds depend
    on the class alone (its Meta and declared fields), so they are built once and every instance
    gets its own deep copy, as DRF gives each instance copies of declared fields.  Mixed in before
    ``serializers.ModelSerializer``; not for a serializer whose ``get_fields`` depends on the instance
    or its context (change ``self.fields`` in ``__init__`` instead).
    """

    def get_fields(self):
        cls = type(self)
        built = cls.__dict__.get("_fields_built")
        if built is None:
            built = super().get_fields()
            cls._fields_built = built  # a race builds the same fields twice; either may stay
        return copy.deepcopy(built)


def _has_code(codes, wanted: str) -> bool:
    if isinstance(codes, dict):
        return any(_has_code(value, wanted) for value in codes.values())
    if isinstance(codes, list):
        return any(_has_code(value, wanted) for value in codes)
    return codes == wanted


class Text(serializers.CharField):
    """A CharField that refuses text PostgreSQL cannot store (lone surrogates)."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise serializers.ValidationError(gettext("The text contains characters that are not allowed."),
                                              code="invalid_text") from None
        return value


# --- pagination ---------------------------------------------------------------------------------

_INT_POSITION = re.compile(r"^-?\d{1,19}$")


def invalid_cursor(param: str = "cursor") -> InvalidInput:
    """400 invalid_cursor: a cursor we did not make (tampered, truncated, or for another list)."""
    message = gettext("Invalid cursor: follow the next / previous links as given.")
    return InvalidInput(message, code="invalid_cursor", field=param)


class CursorPage(CursorPagination):
    """Cursor pagination with a stable ordering per view (``ordering`` on the view).

    A cursor that was not made by us (tampered, or for another ordering) is a
    400 on the ``cursor`` parameter, never a database error.
    """

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
    ordering = "-id"

    def decode_cursor(self, request):
        encoded = request.query_params.get(self.cursor_query_param)
        if not encoded:
            return None  # absent or empty (?cursor=): the first page
        # DRF decodes leniently: base64 that drops unknown characters, unknown tokens ignored,
        # so a mangled cursor silently became the first page.  We only accept what we emit.
        if not self._tokens_ok(encoded):
            raise invalid_cursor(self.cursor_query_param)
        try:
            cursor = super().decode_cursor(request)
        except exceptions.NotFound:
            raise invalid_cursor(self.cursor_query_param) from None
        if cursor is not None and cursor.position is not None and not self._position_ok(cursor.position):
            raise invalid_cursor(self.cursor_query_param)
        return cursor

    @staticmethod
    def _tokens_ok(encoded: str) -> bool:
        """The cursor is strict base64 of a query string of o / r / p, each at most once."""
        try:
            text = base64.b64decode(encoded.encode("ascii"), validate=True).decode("ascii")
        except (ValueError, UnicodeError):
            return False
        tokens = parse_qs(text, keep_blank_values=True)
        return bool(tokens) and set(tokens) <= {"o", "r", "p"} and all(len(v) == 1 for v in tokens.values()) \
            and tokens.get("r", ["0"])[0] in ("0", "1")

    def _position_ok(self, position: str) -> bool:
        field = self.ordering[0].lstrip("-") if isinstance(self.ordering, (list, tuple)) else \
            self.ordering.lstrip("-")
        if field.endswith("_at"):
            try:
                moment = parse_datetime(position)
                if moment is None:
                    return False
                offset = moment.utcoffset()
                if offset is not None and abs(offset) >= timedelta(hours=16):
                    return False  # PostgreSQL accepts offsets up to ±15:59
                moment.astimezone(dt_timezone.utc)
                return True
            except (ValueError, OverflowError):
                return False
        return bool(_INT_POSITION.match(position)) and abs(int(position)) < 2**63

    def get_ordering(self, request, queryset, view):
        self.ordering = getattr(view, "ordering", None) or self.ordering
        return super().get_ordering(request, queryset, view)


# --- ETag / If-Match ----------------------------------------------------------------------------


def etag_for(version: int) -> str:
    return f'"{version}"'


def if_match_check(request, version: int, *, required: bool = False) -> None:
    """Raise 412 precondition_failed when the request's If-Match names another version
    (428 precondition_required when it is ``required`` and missing)."""
    header = request.headers.get("If-Match")
    if not header:
        if required:
            raise PreconditionRequired()
        return
    current = str(version)
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*":
            return
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag.strip('"') == current:
            return
    raise PreconditionFailed()


# --- OpenAPI documentation of errors ------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """The one error body (documentation only)."""

    code = serializers.CharField(help_text="Stable machine-readable code, e.g. insufficient_stock.")
    message = serializers.CharField(help_text="Human-readable message in the language of Accept-Language.")

    def get_fields(self):
        fields = super().get_fields()
        # "fields" cannot be a class attribute of a Serializer (it is the field map itself).
        fields["fields"] = serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()), required=False,
            help_text="Messages per input field; nested fields as dotted paths (lines.0.qty).")
        fields["params"] = serializers.DictField(required=False, help_text="Values that explain the error.")
        return fields


ERROR_DEFAULTS: dict[int, tuple[str, str, str]] = {
    400: ("invalid_input", "The input is not valid.", "Invalid input: malformed JSON, wrong types, "
          "failed validation, a bad filter, a cursor we did not make (invalid_cursor), or a missing "
          "Idempotency-Key."),
    401: ("not_authenticated", "Authentication credentials were not provided.",
          "No, unknown, revoked or expired API key (or no session)."),
    403: ("insufficient_scope", "This API key lacks the scope orders:write.",
          "The caller may not use this operation (scope, kind of caller, store)."),
    404: ("not_found", "Not found.", "No such object, or not visible to this caller."),
    409: ("idempotency_in_progress", "A request with this Idempotency-Key is still being processed.",
          "Conflict with the current state, or a concurrent request with the same Idempotency-Key."),
    412: ("precondition_failed", "The resource changed since you read it (If-Match does not match its ETag).",
          "If-Match does not match the current version."),
    413: ("request_too_large", "The request body is too large.", "The request body is too large."),
    428: ("precondition_required", "Send the version you read as If-Match to change this resource.",
          "If-Match is required here and was not sent."),
    415: ("unsupported_media_type", 'Unsupported media type "text/plain" in request.',
          "The body must be application/json."),
    422: ("idempotency_key_reused", "This Idempotency-Key was used with a different request.",
          "The request is well-formed but cannot be applied (domain rule), or an Idempotency-Key reused "
          "with another payload."),
    429: ("rate_limited", "Too many requests. Try again in 12 seconds.",
          "Rate limit exceeded; see Retry-After."),
}

LIST_ERRORS = (400, 401, 403, 429)
READ_ERRORS = (401, 403, 404, 429)
WRITE_ERRORS = (400, 401, 403, 409, 413, 415, 422, 429)


def error_responses(*statuses: int, examples: dict[int, list[tuple[str, str]]] | None = None) -> dict:
    """``{status: OpenApiResponse(Error, examples)}`` for extend_schema(responses=...)."""
    examples = examples or {}
    out = {}
    for code_status in sorted(set(statuses) | set(examples)):
        default_code, default_message, description = ERROR_DEFAULTS.get(
            code_status, ("error", "Error.", "Error."))
        pairs = [(default_code, default_message), *examples.get(code_status, [])]
        seen, items = set(), []
        for code, message in pairs:
            if code in seen:
                continue
            seen.add(code)
            body = {"code": code, "message": message}
            if code == "invalid_input":
                body["fields"] = {"lines.0.qty": ["Ensure this value is greater than or equal to 1."]}
            items.append(OpenApiExample(f"{code_status} {code}", value=body, response_only=True,
                                        status_codes=[str(code_status)]))
        out[code_status] = OpenApiResponse(ErrorSerializer, description=description, examples=items)
    return out


RETRY_AFTER_HEADER = OpenApiParameter(
    "Retry-After", type=int, location=OpenApiParameter.HEADER, response=[429], required=False,
    description="Seconds until the rate limit window resets.")
# On every answer to an authenticated caller once the request was counted (not on a 401).
RATE_LIMIT_HEADERS = [
    OpenApiParameter("RateLimit-Limit", type=int, location=OpenApiParameter.HEADER, response=True,
                     required=False, description="Requests allowed per window (one minute) for this caller."),
    OpenApiParameter("RateLimit-Remaining", type=int, location=OpenApiParameter.HEADER, response=True,
                     required=False, description="Requests left in the current window."),
    OpenApiParameter("RateLimit-Reset", type=int, location=OpenApiParameter.HEADER, response=True,
                     required=False, description="Seconds until the current window ends."),
]
ETAG_HEADER = OpenApiParameter(
    "ETag", type=str, location=OpenApiParameter.HEADER, response=[200, 201], required=False,
    description="The order's version; send it back as If-Match to update only that version.")
IF_MATCH_HEADER = OpenApiParameter(
    "If-Match", type=str, location=OpenApiParameter.HEADER, required=False,
    description='Optional ETag of the order (e.g. "3"); a stale one is refused with 412.')
IF_MATCH_REQUIRED = OpenApiParameter(
    "If-Match", type=str, location=OpenApiParameter.HEADER, required=True,
    description='The ETag you read (e.g. "3"): required; a stale one is refused with 412.')
IDEMPOTENCY_KEY_HEADER = OpenApiParameter(
    "Idempotency-Key", type=str, location=OpenApiParameter.HEADER, required=True,
    description="A unique key per logical request (e.g. a UUID), 1–255 visible ASCII characters. A retry "
                "with the same key replays the first response; kept at least 24 hours.",
    pattern=r"^[\x21-\x7e]{1,255}$")


def api_doc(*, summary: str, responses: dict, errors=(), error_examples=None, request=None,
            description: str = "",
            parameters=(), idempotent: bool = False, if_match: bool = False, examples=(), tags=None,
            operation_id: str | None = None, auth=None):
    """``extend_schema`` with the documented errors, Retry-After and RateLimit-*, and Idempotency-Key /
    If-Match."""
    params = [*parameters, RETRY_AFTER_HEADER, *RATE_LIMIT_HEADERS]
    if idempotent:
        params.append(IDEMPOTENCY_KEY_HEADER)
    if if_match:
        params.append(IF_MATCH_HEADER)
    kwargs = {}
    if operation_id:
        kwargs["operation_id"] = operation_id
    if auth is not None:
        kwargs["auth"] = auth
    return extend_schema(summary=summary, description=description, request=request, tags=tags,
                         responses={**responses, **error_responses(*errors, examples=error_examples)},
                         parameters=params, examples=list(examples), **kwargs)


def schema_rules(result, generator, request, public):
    """drf-spectacular post-processing: state in the schema the rules the API enforces everywhere, so
    generated clients and fuzzers know them: ``limit`` is 1–200 (``CursorPage.max_page_size``) and a
    path id 1–2^63-1 (a larger one is a 404 without touching the database)."""
    for item in result.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if parameter.get("in") == "query" and parameter.get("name") == "limit":
                    schema.update({"type": "integer", "minimum": 1, "maximum": CursorPage.max_page_size})
                elif parameter.get("in") == "path" and parameter.get("name") == "id" \
                        and schema.get("type") == "integer":
                    schema.update({"minimum": 1, "maximum": MAX_ID})
    return result
