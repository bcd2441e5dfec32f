"""A private PostgreSQL cluster on a free loopback port, from the binaries at hand: those the
pgserver package ships (the embedded server's), else the system's.

A fault test stops and starts it at will; the machine's shared server is never touched.  As
root, PostgreSQL refuses to run, so the cluster belongs to the ``pgserver`` system user that
the pgserver package (and o2o.embedded) already use, created the way pgserver does if missing.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.faults.redis_private import _free_port
from tests.procs import database_url


def _bin_dir() -> Path:
    """pgserver's binaries if the package is installed, else the newest of the system's."""
    try:
        import pgserver
    except ImportError:
        pass
    else:
        shipped = Path(pgserver.__file__).parent / "pginstall" / "bin"
        if (shipped / "initdb").exists():
            return shipped
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = Path(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip())
        if (bindir / "initdb").exists():
            return bindir
    raise RuntimeError("no PostgreSQL server binaries: install the pgserver package or postgresql")


BIN = _bin_dir()
DB_NAME = "o2o_faults"
# Per-column options of the source server's own build (e.g. ``SET (pg_attver=…)``) that a stock
# server refuses; they carry no data.
_COLUMN_OPTIONS = re.compile(rb"^ALTER TABLE ONLY \S+ ALTER COLUMN \S+ SET \(.*\);$", re.MULTILINE)


class PrivatePostgres:
    def __init__(self) -> None:
        self.port = _free_port()
        # Not under pytest's tmp_path: that is private to root, and the server may run as pgserver.
        self.root = Path(tempfile.mkdtemp(prefix="o2o-faults-pg-"))
        self.data = self.root / "data"
        self.user = "pgserver" if os.geteuid() == 0 else None
        if self.user:
            entry = _system_user(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o700)

    @property
    def settings(self) -> dict:
        """What a Django DATABASES entry needs to reach it."""
        return {"HOST": "127.0.0.1", "PORT": str(self.port), "NAME": DB_NAME, "USER": "postgres", "PASSWORD": ""}

    @property
    def url(self) -> str:
        return database_url(self.settings)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(BIN / args[0]), *args[1:]]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                       f"unix_socket_directories = '{self.root}'\nfsync = off\nmax_connections = 60\n")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", DB_NAME)

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-t", "60",
                  "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: active transactions are rolled back and clients disconnected; ``immediate``: a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def ready(self) -> bool:
        return self._run("pg_isready", "-h", "127.0.0.1", "-p", str(self.port), check=False).returncode == 0

    def copy_from(self, source: dict) -> None:
        """Load a dump of another database (schema and rows) into ours."""
        dump = subprocess.run([str(BIN / "pg_dump"), "--no-owner", "--no-privileges",
                               f"--dbname={database_url(source)}"], capture_output=True, timeout=120)
        if dump.returncode != 0:
            raise RuntimeError(f"pg_dump failed: {dump.stderr.decode()[-2000:]}")
        load = subprocess.run([str(BIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", self.url],
                              input=_COLUMN_OPTIONS.sub(b"", dump.stdout), capture_output=True, timeout=120)
        if load.returncode != 0:
            raise RuntimeError(f"loading the dump failed: {load.stderr.decode()[-2000:]}")

    def destroy(self) -> None:
        self.stop("immediate")
        for _ in range(50):
            if not (self.data / "postmaster.pid").exists():
                break
            time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def private_copy_of_the_test_database():
    """The test database as it is now, copied into a private cluster, with this process's
    connection moved onto it for the length of the block (and back after)."""
    from django.db import connection

    server = PrivatePostgres()
    saved = {name: connection.settings_dict.get(name) for name in server.settings}
    try:
        server.init()
        server.copy_from(connection.settings_dict)
        connection.close()
        connection.settings_dict.update(server.settings)
        yield server
    finally:
        connection.close()
        connection.settings_dict.update(saved)
        server.destroy()


def _system_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "-s", "/bin/bash", name], check=True, capture_output=True, text=True)
        return pwd.getpwnam(name)
