"""``make demo``: the whole backoffice on one machine.

Runs after ``manage.py migrate``.  Says which database and broker are in use,
loads the demo data on first run (``manage.py seed_demo``), then starts and
supervises three processes that share one environment:

    web     Django's server on 127.0.0.1:$PORT (default 8000), or gunicorn with --web gunicorn
    worker  ``celery -A o2o worker``  (outbox relay and dispatch, reservation expiry, ...)
    beat    ``celery -A o2o beat``    (the schedule in o2o/schedule.py)

Ctrl-C or SIGTERM stops all three and exits 0.  If one of them dies on its own,
the others are stopped too and the exit code is non-zero, so a broken demo
never looks like a working one.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from o2o import embedded

BASE_DIR = Path(__file__).resolve().parent.parent
STOP_TIMEOUT = 15.0  # seconds a process gets to shut down before it is killed
READY_TIMEOUT = 60.0
# Pages printed once they exist in the URL configuration.
PAGES = [
    ("/admin/", "head office (Django admin)"),
    ("/pos/", "store POS"),
    ("/dashboard/", "dashboards"),
    ("/api/v1/docs/", "partner API (OpenAPI)"),
]

_stop_requested = threading.Event()
_output_lock = threading.Lock()


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    reader: threading.Thread | None = field(default=None, repr=False)


def _say(text: str) -> None:
    with _output_lock:
        print(text, flush=True)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m o2o.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))
    parser.add_argument("--web", choices=["runserver", "gunicorn"], default="runserver")
    parser.add_argument("--no-seed", action="store_true", help="do not load demo data")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "o2o.settings")
    database, broker = embedded.resolved_urls()
    _say(embedded.describe(database, broker))

    # Every child gets the resolved URLs, so all three talk to the same servers.
    env = dict(os.environ, DATABASE_URL=database, REDIS_URL=broker, PYTHONUNBUFFERED="1")
    os.environ.update(DATABASE_URL=database, REDIS_URL=broker)
    if not _port_free(args.host, args.port):
        _say(f"port {args.port} on {args.host} is in use; choose another, e.g. PORT={args.port + 1} make demo")
        return 1

    pages = _known_pages()
    if not args.no_seed:
        seeded = _seed(env)
        if seeded != 0:
            _say(f"manage.py seed_demo failed (exit {seeded})")
            return seeded

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    children = _children(args)
    return _supervise(children, env, args, pages)


# --- before the processes start ---------------------------------------------------------


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _known_pages() -> list[tuple[str, str]]:
    """The demo's pages that the URL configuration serves."""
    import django
    from django.db import connections
    from django.urls import Resolver404, resolve

    django.setup()
    pages = []
    for path, title in PAGES:
        try:
            resolve(path)
        except Resolver404:
            continue
        pages.append((path, title))
    connections.close_all()
    return pages


def _seed(env: dict[str, str]) -> int:
    _say("loading demo data unless it is there (manage.py seed_demo --if-empty) ...")
    return subprocess.run([sys.executable, "manage.py", "seed_demo", "--if-empty"], cwd=BASE_DIR,
                          env=env).returncode


def _children(args: argparse.Namespace) -> list[Child]:
    py = sys.executable
    if args.web == "gunicorn":
        web = [py, "-m", "gunicorn", "o2o.wsgi:application", "--config", str(BASE_DIR / "gunicorn.conf.py"),
               "--bind", f"{args.host}:{args.port}", "--limit-request-line", "8190",
               "--limit-request-field_size", "32768", "--access-logfile", "-"]
    else:
        web = [py, "manage.py", "runserver", f"{args.host}:{args.port}", "--noreload"]
    schedule = embedded.DATA_DIR / "celerybeat-schedule"
    return [
        Child("web", web),
        Child("worker", [py, "-m", "celery", "-A", "o2o", "worker", "-l", "info", "--concurrency", "2"]),
        Child("beat", [py, "-m", "celery", "-A", "o2o", "beat", "-l", "info", "-s", str(schedule)]),
    ]


# --- running them -----------------------------------------------------------------------


def _on_signal(signum, frame) -> None:
    _stop_requested.set()


def _prctl():
    """Linux: ask the kernel to SIGTERM a child when this process dies, even by SIGKILL."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    PR_SET_PDEATHSIG = 1

    def die_with_parent() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return die_with_parent


def _start(children: list[Child], env: dict[str, str]) -> None:
    preexec = _prctl() if sys.platform.startswith("linux") else None
    for child in children:
        # A process group of its own: the terminal's Ctrl-C reaches only this supervisor,
        # which then stops the children in order instead of all of them at once.
        child.proc = subprocess.Popen(
            child.argv, cwd=BASE_DIR, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            process_group=0, preexec_fn=preexec,
        )
    # Readers start after the last fork, so no thread is running while a child is forked.
    for child in children:
        child.reader = threading.Thread(target=_relay_output, args=(child,), daemon=True)
        child.reader.start()


def _relay_output(child: Child) -> None:
    prefix = f"{child.name:<7}| "
    for raw in iter(child.proc.stdout.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip("\n")
        with _output_lock:
            sys.stdout.write(prefix + line + "\n")
            sys.stdout.flush()


def _web_ready(args: argparse.Namespace) -> bool:
    try:
        with urllib.request.urlopen(f"http://{args.host}:{args.port}/healthz", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # it answers, even if unhappy; /healthz says why
    except (urllib.error.URLError, OSError):
        return False


def _banner(args: argparse.Namespace, pages: list[tuple[str, str]]) -> None:
    base = f"http://{args.host}:{args.port}"
    lines = ["", "o2o is running:"]
    lines += [f"  {base}{path:<16} {title}" for path, title in [*pages, ("/healthz", "health check")]]
    lines += [
              "worker and beat are running; press Ctrl-C to stop everything.", ""]
    _say("\n".join(lines))


def _supervise(children: list[Child], env: dict[str, str], args: argparse.Namespace,
               pages: list[tuple[str, str]]) -> int:
    exit_code = 0
    started = time.monotonic()
    announced = False
    try:
        _start(children, env)
        while not _stop_requested.is_set():
            dead = next((c for c in children if c.proc.poll() is not None), None)
            if dead is not None:
                code = dead.proc.returncode
                _say(f"{dead.name} exited with code {code}; stopping the others")
                exit_code = code if code and code > 0 else 1
                break
            if not announced:
                if _web_ready(args):
                    _banner(args, pages)
                    announced = True
                elif time.monotonic() - started > READY_TIMEOUT:
                    _say(f"web did not answer on port {args.port} within {READY_TIMEOUT:.0f}s; stopping")
                    exit_code = 1
                    break
            _stop_requested.wait(0.25)
    finally:
        _stop(children)
    if exit_code == 0:
        _say("stopped")
    return exit_code


def _stop(children: list[Child]) -> None:
    """SIGTERM to each main process (warm shutdown), wait, then SIGKILL whatever is left."""
    running = [c for c in children if c.proc is not None]
    for child in running:
        if child.proc.poll() is None:
            child.proc.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    for child in running:
        try:
            child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _say(f"{child.name} did not stop within {STOP_TIMEOUT:.0f}s; killing it")
    for child in running:
        # The whole group: also a worker's pool processes, should any outlive it.
        try:
            os.killpg(child.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        child.proc.wait()
        if child.reader is not None:
            child.reader.join(timeout=2)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C before the processes were started, e.g. while seeding
        sys.exit(130)
