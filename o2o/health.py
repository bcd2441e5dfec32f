from django.db import connection
from django.http import JsonResponse


def healthz(request):
    """Liveness plus a database round trip; 503 when the database is unreachable."""
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
    except Exception:
        return JsonResponse({"status": "unavailable", "code": "database_unavailable"}, status=503)
    return JsonResponse({"status": "ok"})
