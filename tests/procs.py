"""What the tests that start other processes (servers, workers, pg_dump, a private cluster) share:
the database they are on, as a libpq URL those processes can take."""

from __future__ import annotations

from urllib.parse import quote, urlencode


def database_url(db: dict, *, name: str | None = None) -> str:
    """A Django DATABASES entry (``connection.settings_dict``) as a URL for a child process.

    The host may be a TCP host or, as on the embedded server (o2o.embedded), a Unix-socket
    directory, in ``HOST`` or in ``OPTIONS["host"]`` (where dj-database-url puts ``?host=``);
    a socket directory goes into libpq's ``?host=/path`` form, never a guessed 127.0.0.1:5432.
    ``name`` names another database on the same server.
    """
    options = db.get("OPTIONS") or {}
    user = db.get("USER") or options.get("user") or "postgres"
    password = db.get("PASSWORD") or options.get("password") or ""
    auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    host = str(db.get("HOST") or options.get("host") or "127.0.0.1")
    port = str(db.get("PORT") or options.get("port") or 5432)
    path = quote(name or db["NAME"], safe="")
    if host.startswith("/"):
        return f"postgresql://{auth}@/{path}?" + urlencode({"host": host, "port": port})
    return f"postgresql://{auth}@{host}:{port}/{path}"
