"""Turn a lost database into a clean 503 with a stable code instead of a 500 page.

The failed request's transaction was rolled back by PostgreSQL (or never reached it), so
nothing was written; Django drops the broken connection at the end of the request
(CONN_HEALTH_CHECKS), and the next request connects again once the server is back.
"""

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse

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
