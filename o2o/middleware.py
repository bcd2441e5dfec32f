"""Turn a lost database into a clean 503 with a stable code instead of a 500 page (and, below,
refuse oversized URLs and headers on the API in its own error shape).

The failed request's transaction was rolled back by PostgreSQL (or never reached it), so
nothing was written; Django drops the broken connection at the end of the request
(CONN_HEALTH_CHECKS), and the next request connects again once the server is back.
"""

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.utils.translation import gettext

from o2o.db import _is_retryable


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, (OperationalError, InterfaceError)) and not _is_retryable(exception):
            response = JsonResponse({"code": "database_unavailable",
                                     "message": "The database is unavailable; retry shortly."}, status=503)
            response["Retry-After"] = "1"
            return response
        return None


class RequestLimitsMiddleware:
    """A too-long URL or header on /api/v1/ gets the API's error shape (414 / 431), not an HTML page.

    gunicorn runs with generous limits (see docker-compose.yml) so that such requests reach
    Django, which refuses them here with a stable code before any view, session or database work:
    ``request_uri_too_long`` when the path and query string exceed ``API_MAX_URI_BYTES`` (4096),
    ``request_headers_too_large`` when one header exceeds ``API_MAX_HEADER_FIELD_BYTES`` (8190)
    or all of them together ``API_MAX_HEADERS_BYTES`` (16384).  Requests beyond gunicorn's own
    limits never reach Django and still get gunicorn's plain answer.  Runs after the locale
    middleware, so the message follows Accept-Language.
    """

    PREFIX = "/api/v1/"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith(self.PREFIX):
            refused = self._refusal(request)
            if refused is not None:
                return refused
        return self.get_response(request)

    @staticmethod
    def _refusal(request):
        uri = request.META.get("RAW_URI") or request.get_full_path()
        uri_bytes = len(uri.encode("utf-8", "surrogateescape"))
        if uri_bytes > int(getattr(settings, "API_MAX_URI_BYTES", 4096)):
            return JsonResponse({"code": "request_uri_too_long",
                                 "message": gettext("The URL is too long; send fewer or shorter filters."),
                                 "params": {"max_bytes": int(getattr(settings, "API_MAX_URI_BYTES", 4096))}},
                                status=414)
        field_limit = int(getattr(settings, "API_MAX_HEADER_FIELD_BYTES", 8190))
        total_limit = int(getattr(settings, "API_MAX_HEADERS_BYTES", 16384))
        total, largest = 0, 0
        for name, value in _header_items(request.META):
            size = len(name) + 2 + len(str(value).encode("utf-8", "surrogateescape"))
            total += size + 2
            largest = max(largest, size)
        if largest > field_limit or total > total_limit:
            return JsonResponse({"code": "request_headers_too_large",
                                 "message": gettext("The request headers are too large."),
                                 "params": {"max_field_bytes": field_limit, "max_total_bytes": total_limit}},
                                status=431)
        return None


def _header_items(meta):
    for key, value in meta.items():
        if key.startswith("HTTP_"):
            yield key[5:], value
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            yield key, value
