"""A private PgBouncer in transaction pooling mode in front of a PostgreSQL server.

For the benchmark (bench/run.py), the fault scenarios (tests/faults/test_pgbouncer.py) and for
trying the production set-up by hand (``scripts/pgbouncer``, which prints the URL to put in
DATABASE_URL together with ``DB_POOLER=pgbouncer``).  What transaction pooling means for the
code is in docs/scaling.md.

PgBouncer comes from the OS packages (Debian: ``pgbouncer``).  When it is missing it is
installed with apt-get where that is possible (root), otherwise :class:`PgBouncerMissing` says
what to run.  PgBouncer refuses to run as root: as root it is started as the ``postgres`` system
user (which the Debian package creates) in a run directory that user owns.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

CANDIDATES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")
RUN_AS = "postgres"  # the system user of the Debian package, when started by root
DEFAULT_POOL_SIZE = 20


class PgBouncerMissing(RuntimeError):
    pass


def binary(*, install: bool = True) -> str:
    """The pgbouncer executable; installed from the OS packages when missing and possible."""
    found = shutil.which("pgbouncer") or next((c for c in CANDIDATES if os.access(c, os.X_OK)), None)
    if found:
        return found
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing pgbouncer from the OS packages", file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "pgbouncer"], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        return binary(install=False)
    raise PgBouncerMissing("pgbouncer is not installed; run: sudo apt-get install pgbouncer (Debian/Ubuntu), "
                           "or install it with your OS's package manager")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _upstream(url: str) -> dict:
    """Host, port, user, password and database of a libpq URL (``?host=/socket/dir`` included)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    return {"host": query.get("host", [parts.hostname or "127.0.0.1"])[0],
            "port": int(query.get("port", [parts.port or 5432])[0]),
            "user": unquote(parts.username or "postgres"), "password": unquote(parts.password or ""),
            "dbname": unquote(parts.path.lstrip("/")) or "postgres"}


def _run_as(host: str) -> str:
    """The system user pgbouncer drops to when root starts it: the package's ``postgres`` user, or,
    when the server is reached by a unix socket in a private directory (the embedded server's), the
    owner of that directory, the one user who may open the socket."""
    if host.startswith("/"):
        try:
            owner = pwd.getpwuid(os.stat(host).st_uid).pw_name
        except (OSError, KeyError):
            return RUN_AS
        if owner != "root":
            return owner
    return RUN_AS


def _quoted(value: str) -> str:
    """A value in PgBouncer's connection strings and auth file."""
    return value.replace("\\", "\\\\").replace("'", "\\'").replace('"', '""')


class PgBouncer:
    """One pgbouncer process on a loopback port, pooling per transaction toward ``upstream_url``.

    Clients connect without a password (auth_type trust on 127.0.0.1 only); PgBouncer logs into the
    server as the upstream URL's user, with its password when the server asks for one.  Any
    database name is passed through to the same name on the server.
    """

    def __init__(self, upstream_url: str, *, run_dir: Path | None = None, port: int | None = None,
                 pool_size: int = DEFAULT_POOL_SIZE) -> None:
        self.upstream = _upstream(upstream_url)
        self.port = port or free_port()
        self.pool_size = pool_size
        self.run_as = _run_as(self.upstream["host"]) if os.geteuid() == 0 else None
        # Not under a private (0700) directory of root's: the pgbouncer user must reach its files.
        self.own_run_dir = run_dir is None
        self.run_dir = Path(run_dir) if run_dir else Path(tempfile.mkdtemp(prefix="o2o-pgbouncer-"))
        self.proc: subprocess.Popen | None = None

    def url_for(self, dbname: str | None = None) -> str:
        user = quote(self.upstream["user"], safe="")
        return f"postgresql://{user}@127.0.0.1:{self.port}/{quote(dbname or self.upstream['dbname'], safe='')}"

    @property
    def url(self) -> str:
        return self.url_for()

    @property
    def log_path(self) -> Path:
        return self.run_dir / "pgbouncer.log"

    def config(self) -> str:
        up = self.upstream
        server = f"host={up['host']} port={up['port']}"
        return "\n".join([
            "[databases]",
            f"* = {server}",
            "",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {self.port}",
            "unix_socket_dir =",
            "auth_type = trust",
            f"auth_file = {self.run_dir / 'userlist.txt'}",
            "pool_mode = transaction",
            f"default_pool_size = {self.pool_size}",
            "max_client_conn = 2000",
            # A client that sends these (JDBC, some drivers) is not refused; Django sends neither.
            "ignore_startup_parameters = extra_float_digits,options",
            f"pidfile = {self.run_dir / 'pgbouncer.pid'}",
            f"logfile = {self.log_path}",
            "log_connections = 0",
            "log_disconnections = 0",
            "",
        ])

    def _write(self) -> Path:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        ini = self.run_dir / "pgbouncer.ini"
        ini.write_text(self.config())
        users = self.run_dir / "userlist.txt"
        users.write_text(f'"{_quoted(self.upstream["user"])}" "{_quoted(self.upstream["password"])}"\n')
        for path in (self.run_dir, ini, users):
            path.chmod(0o700 if path.is_dir() else 0o600)
            if self.run_as:
                entry = pwd.getpwnam(self.run_as)
                os.chown(path, entry.pw_uid, entry.pw_gid)
        return ini

    def start(self, timeout: float = 20) -> "PgBouncer":
        ini = self._write()
        args = [binary()] + (["-u", self.run_as] if self.run_as else []) + [str(ini)]
        # Its own output goes to a file: it outlives scripts/pgbouncer, which exits after printing the URL.
        with open(self.run_dir / "stderr.log", "ab") as err:
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited with {self.proc.returncode}{self._log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"pgbouncer did not listen on 127.0.0.1:{self.port}{self._log_tail()}")

    def _log_tail(self) -> str:
        tail = ""
        for path in (self.run_dir / "stderr.log", self.log_path):
            try:
                tail += "\n" + path.read_text()[-1000:]
            except OSError:
                pass
        return tail

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: immediate shutdown (open transactions are cut); SIGKILL: a crash."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None

    def close(self) -> None:
        """Stop it and remove the run directory it made for itself."""
        self.stop()
        if self.own_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def restart(self, down_seconds: float = 0) -> None:
        """Stop it and start it again on the same port, ``down_seconds`` later."""
        self.stop()
        time.sleep(down_seconds)
        self.start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/pgbouncer", description=__doc__.split("\n\n")[0])
    parser.add_argument("url", nargs="?", default=os.environ.get("DATABASE_URL"),
                        help="the PostgreSQL server's URL (default: $DATABASE_URL)")
    parser.add_argument("--run-dir", type=Path, help="where the config, log and pid file go (default: a new one)")
    parser.add_argument("--port", type=int, help="the port to listen on (default: a free one)")
    parser.add_argument("--pool-size", type=int, default=DEFAULT_POOL_SIZE,
                        help="server connections per database and user")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("give the PostgreSQL URL, or set DATABASE_URL")
    try:
        bouncer = PgBouncer(args.url, run_dir=args.run_dir, port=args.port, pool_size=args.pool_size).start()
    except PgBouncerMissing as exc:
        print(f"scripts/pgbouncer: {exc}", file=sys.stderr)
        return 1
    print(f"pgbouncer (transaction pooling) pid {bouncer.proc.pid}, run directory {bouncer.run_dir}, "
          f"stop it with: kill {bouncer.proc.pid}", file=sys.stderr)
    print(bouncer.url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
