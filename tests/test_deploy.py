"""The deployment files agree with the settings, and the production settings pass
Django's deployment checks.

Docker itself is not needed: docker-compose.yml is read as data and checked against the
environment variables that o2o/settings.py (and o2o/embedded.py, which settings asks for
the database and broker URLs) really read.
"""

from __future__ import annotations

import ast
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from django.conf import settings

BASE_DIR = Path(__file__).resolve().parent.parent
APP_SERVICES = ("web", "worker", "beat")
REQUIRED = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ALLOWED_HOSTS", "DEBUG"}
ENV_HELPERS = {"env_bool", "env_list", "env_int"}


def _is_os_environ(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def env_names_read(path: Path) -> set[str]:
    """Names read through os.environ[...], os.environ.get(), os.getenv() or the env_* helpers."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        key = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            if isinstance(func, ast.Name) and func.id in ENV_HELPERS:
                key = node.args[0]
            elif isinstance(func, ast.Attribute) and func.attr == "get" and _is_os_environ(func.value):
                key = node.args[0]
            elif (isinstance(func, ast.Attribute) and func.attr == "getenv"
                  and isinstance(func.value, ast.Name) and func.value.id == "os"):
                key = node.args[0]
        elif isinstance(node, ast.Subscript) and _is_os_environ(node.value):
            key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            names.add(key.value)
    return names


SETTINGS_ENV = env_names_read(BASE_DIR / "o2o" / "settings.py") | env_names_read(BASE_DIR / "o2o" / "embedded.py")

_VAR = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error} and $$."""

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group("name"), m.group("op"), m.group("arg")
        have = env.get(name)
        if op in (":-", ":?") and have == "":
            have = None
        if have is not None:
            return have
        if op and op.endswith("?"):
            raise KeyError(f"{name} is required: {arg}")
        return arg if op else ""

    return _VAR.sub(sub, value)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())


def _command(service: dict) -> str:
    command = service["command"]
    return " ".join(command) if isinstance(command, list) else command


def _environment(service: dict) -> dict[str, str]:
    env = service["environment"]
    if isinstance(env, list):  # the KEY=value form
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


# --- docker-compose.yml ----------------------------------------------------------------


def test_settings_env_names_are_found():
    # The extraction itself: these are read in plainly different ways in settings.py.
    assert {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DB_CONN_MAX_AGE", "LOG_LEVEL",
            "DATABASE_URL", "REDIS_URL", "USE_X_FORWARDED_PROTO"} <= SETTINGS_ENV


def test_compose_has_the_services_and_images(compose):
    services = compose["services"]
    assert {"postgres", "redis", *APP_SERVICES} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:15")
    assert services["redis"]["image"].startswith("redis:7")


def test_compose_commands(compose):
    services = compose["services"]
    assert re.match(r"gunicorn o2o\.wsgi(:application)?\b", _command(services["web"]))
    assert _command(services["worker"]).startswith("celery -A o2o worker")
    assert _command(services["beat"]).startswith("celery -A o2o beat")
    migrate = [name for name, svc in services.items() if "command" in svc and "manage.py migrate" in _command(svc)]
    assert migrate, "no service runs the migrations"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_compose_environment_is_read_by_settings(compose, name):
    env = _environment(compose["services"][name])

    unknown = set(env) - SETTINGS_ENV
    assert not unknown, f"{name} sets variables that o2o/settings.py never reads: {sorted(unknown)}"
    missing = REQUIRED - set(env)
    assert not missing, f"{name} does not set {sorted(missing)}"


def test_app_services_share_one_environment(compose):
    envs = [_environment(compose["services"][name]) for name in APP_SERVICES]
    assert envs[0] == envs[1] == envs[2]


def test_compose_urls_point_at_the_postgres_and_redis_services(compose):
    services = compose["services"]
    env = {k: interpolate(v, {"SECRET_KEY": "x" * 64}) for k, v in _environment(services["web"]).items()}
    pg = {k: interpolate(str(v), {}) for k, v in services["postgres"]["environment"].items()}

    db = urlsplit(env["DATABASE_URL"])
    assert db.scheme.startswith("postgres")
    assert db.hostname == "postgres"
    assert (db.username, db.password, db.path.lstrip("/")) == (pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"],
                                                             pg["POSTGRES_DB"])
    broker = urlsplit(env["REDIS_URL"])
    assert broker.scheme == "redis"
    assert broker.hostname == "redis"
    assert env["DEBUG"] == "0"
    assert env["SECRET_KEY"] == "x" * 64
    assert env["ALLOWED_HOSTS"]


def test_compose_refuses_to_start_without_a_secret_key(compose):
    env = _environment(compose["services"]["web"])
    with pytest.raises(KeyError, match="SECRET_KEY"):
        interpolate(env["SECRET_KEY"], {})


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_wait_for_healthy_dependencies(compose, name):
    service = compose["services"][name]
    depends = service["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["redis"]["condition"] == "service_healthy"
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert service["healthcheck"]["test"]


def test_every_long_running_service_has_a_healthcheck(compose):
    for name in ("postgres", "redis", *APP_SERVICES):
        assert compose["services"][name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_dockerfile_builds_from_the_lock_and_collects_static():
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", dockerfile, re.M)
    assert "pip install -r requirements.lock" in dockerfile
    assert "collectstatic --noinput" in dockerfile
    assert "whitenoise" in " ".join(settings.MIDDLEWARE).lower()
    ignored = (BASE_DIR / ".dockerignore").read_text().split()
    assert {".venv", ".o2o", ".git"} <= set(ignored)


# --- manage.py check --deploy ----------------------------------------------------------


def _check_deploy(overrides: dict[str, str]) -> subprocess.CompletedProcess:
    # Start from a clean slate: nothing from the developer's shell changes what is checked.
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    env.update(
        DJANGO_SETTINGS_MODULE="o2o.settings",
        DATABASE_URL=settings.DATABASE_URL,
        REDIS_URL=settings.REDIS_URL,
    )
    env.update(overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120,
    )


def _production() -> dict[str, str]:
    key = secrets.token_urlsafe(48)
    assert len(key) == 64
    return {"DEBUG": "0", "SECRET_KEY": key, "ALLOWED_HOSTS": "shop.example.com"}


def test_production_settings_pass_the_deploy_check():
    result = _check_deploy(_production())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout + result.stderr


def test_deploy_check_fails_with_debug_on():
    result = _check_deploy({**_production(), "DEBUG": "1"})
    assert result.returncode != 0
    assert "security.W018" in result.stderr  # DEBUG in deployment


def test_compose_environment_passes_the_deploy_check(compose):
    env = {k: interpolate(v, {"SECRET_KEY": secrets.token_urlsafe(48)})
           for k, v in _environment(compose["services"]["web"]).items()}
    # Same settings, but this machine's database and broker.
    env.pop("DATABASE_URL")
    env.pop("REDIS_URL")
    result = _check_deploy(env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_missing_secret_key_is_fatal_when_required():
    result = _check_deploy({"DEBUG": "0", "ALLOWED_HOSTS": "shop.example.com", "O2O_REQUIRE_SECRET_KEY": "1"})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_readme_documents_every_setting_variable():
    readme = (BASE_DIR / "README.md").read_text()
    undocumented = sorted(name for name in SETTINGS_ENV if f"`{name}`" not in readme)
    assert not undocumented, f"README.md does not describe {undocumented}"


def test_suite_runs_on_the_test_settings():
    # `make test` must not run the suite on the production settings (HTTPS redirects, secure
    # cookies, hashed static files), whatever imported o2o first.
    assert settings.SETTINGS_MODULE == "o2o.settings_test"


def _po_entries(path: Path) -> dict[str, str]:
    """msgid -> msgstr of a .po file (single forms, obsolete entries skipped).

    An entry with a context is keyed "context\x04msgid", as gettext catalogs key it."""
    entries: dict[str, str] = {}
    current: dict[str, list[str]] = {}
    key = None

    def flush():
        if "msgid" in current and "msgstr" in current:
            context = "".join(current.get("msgctxt", []))
            msgid = "".join(current["msgid"])
            entries[f"{context}\x04{msgid}" if context else msgid] = "".join(current["msgstr"])
        current.clear()

    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("msgctxt "):
            flush()
            key, rest = "msgctxt", line[8:]
        elif line.startswith("msgid "):
            if "msgctxt" not in current or "msgid" in current:
                flush()
            key, rest = "msgid", line[6:]
        elif line.startswith("msgstr "):
            key, rest = "msgstr", line[7:]
        elif line.startswith('"') and key:
            rest = line
        else:
            key = None
            continue
        current.setdefault(key, []).append(ast.literal_eval(rest))
    flush()
    entries.pop("", None)  # the header
    return entries


@pytest.mark.parametrize("language", ["zh_Hans", "en"])
def test_committed_translations_are_compiled(language):
    # The image and a fresh clone use the committed .mo files; no gettext tools are needed.
    import gettext

    folder = BASE_DIR / "locale" / language / "LC_MESSAGES"
    po = _po_entries(folder / "django.po")
    with open(folder / "django.mo", "rb") as fh:
        catalog = gettext.GNUTranslations(fh)
    assert po
    stale = [msgid for msgid, msgstr in po.items() if msgstr and catalog.gettext(msgid) != msgstr]
    assert not stale, f"{language}: django.mo is older than django.po; run `make messages`: {stale[:5]}"


def test_every_chinese_message_is_translated():
    po = _po_entries(BASE_DIR / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po")
    untranslated = [msgid for msgid, msgstr in po.items() if not msgstr]
    assert not untranslated, f"zh-Hans translations missing for {untranslated[:10]}"
