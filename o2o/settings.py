"""o2o settings, read from the environment.

Production sets DATABASE_URL, REDIS_URL, SECRET_KEY, DEBUG=0 and ALLOWED_HOSTS.
With DATABASE_URL / REDIS_URL unset, a private PostgreSQL and Redis are started
under .o2o/ (see o2o/embedded.py).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from o2o import embedded

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and env_bool("O2O_REQUIRE_SECRET_KEY", False):
        raise ImproperlyConfigured("SECRET_KEY must be set in production")
    # A per-checkout development key, generated once and kept out of git.
    key_file = embedded.DATA_DIR / "secret_key"
    if not key_file.exists():
        embedded.DATA_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(64))
    SECRET_KEY = key_file.read_text().strip()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "localhost,127.0.0.1")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "corsheaders",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc as our own static files: the docs work offline
    "o2o",
    "catalog",
    "stores",
    "inventory",
    "payments",
    "members",
    "promotions",
    "orders",
    "settlement",
    "reporting",
    "integrations",
    "pos",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before anything that may answer early, so every /api/v1/ answer carries the CORS headers.
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "o2o.middleware.RequestLimitsMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "o2o.middleware.DatabaseUnavailableMiddleware",
    "o2o.ratelimit.RateLimitHeadersMiddleware",
]

ROOT_URLCONF = "o2o.urls"
WSGI_APPLICATION = "o2o.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database and broker ----------------------------------------------------------

DATABASE_URL, REDIS_URL = embedded.resolved_urls()
# Persistent connections, without the per-request health check: DB_CONN_HEALTH_CHECKS=1 costs a
# `SELECT 1` round trip at the start of every request that reuses a connection.  Without it, a
# connection the server (or PgBouncer) dropped fails the one request that meets it (503
# database_unavailable), Django closes it at the end of that request and the next one reconnects
# (docs/scaling.md).
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=env_bool("DB_CONN_HEALTH_CHECKS", False),
    )
}
DATABASES["default"].setdefault("OPTIONS", {})
# Fail fast instead of hanging a request when the database is unreachable.
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env_int("DB_CONNECT_TIMEOUT", 5))
# DB_POOLER=pgbouncer: DATABASE_URL points at PgBouncer in transaction pooling mode, where a
# client's consecutive transactions may run on different server connections.  A server-side
# cursor (QuerySet.iterator() outside a transaction) would outlive its transaction there, so
# Django reads with client-side cursors instead (docs/scaling.md lists what else the mode implies).
DB_POOLER = os.environ.get("DB_POOLER", "").strip().lower()
if DB_POOLER not in {"", "none", "pgbouncer"}:
    raise ImproperlyConfigured(f"DB_POOLER must be empty or 'pgbouncer', not {DB_POOLER!r}")
if DB_POOLER == "pgbouncer":
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
if os.environ.get("DATABASE_REPLICA_URL"):
    DATABASES["replica"] = dj_database_url.parse(os.environ["DATABASE_REPLICA_URL"], conn_max_age=60)
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    "default": {
        "BACKEND": "o2o.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "o2o",
    },
    # Login sessions (SESSION_BACKEND=cache): an alias of their own, so clearing or resizing the
    # shared cache never signs the tills out; SESSION_REDIS_URL puts them on a Redis of their own.
    "sessions": {
        "BACKEND": "o2o.cache.RedisCache",
        "LOCATION": os.environ.get("SESSION_REDIS_URL") or REDIS_URL,
        "KEY_PREFIX": "o2o-sessions",
        "TIMEOUT": None,  # a session's own expiry (SESSION_COOKIE_AGE) is set on every write
    },
}

# --- Celery -------------------------------------------------------------------------

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "Asia/Shanghai"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing must never hang a request when Redis is down: the outbox keeps the
# event and the relay publishes it later.
# A message a killed worker held (acks_late) comes back after visibility_timeout; the
# broker's one-hour default would leave it stranded that long.  Our late-acked tasks are
# idempotent, so an early redelivery of a slow one is harmless.
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5, "max_retries": 1,
                                   "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 900)}
CELERY_TASK_PUBLISH_RETRY = False
# A commit kicks the outbox relay only when no run is already waiting; the flag expires after this.
OUTBOX_KICK_DEBOUNCE_SECONDS = env_int("OUTBOX_KICK_DEBOUNCE_SECONDS", 2)
CELERY_BEAT_SCHEDULE_FILENAME = str(embedded.DATA_DIR / "celerybeat-schedule")

# --- auth and i18n ------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/pos/login/"
# Sign-in throttling of the POS and the admin (o2o/login_throttle.py): wrong passwords allowed per
# user name and address, and the seconds the login then stays locked out.
LOGIN_MAX_FAILURES = env_int("LOGIN_MAX_FAILURES", 5)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 900)

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True
CURRENCY = "CNY"

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Our own static files, and htmx, ECharts, idb (IndexedDB) and Workbox (the till's service worker)
# from the npm lock (`npm ci`, part of `make install`).
STATICFILES_DIRS = [BASE_DIR / "static", ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
                    ("vendor/echarts", BASE_DIR / "node_modules" / "echarts" / "dist"),
                    ("vendor/idb", BASE_DIR / "node_modules" / "idb" / "build"),
                    *((f"vendor/{name}", BASE_DIR / "node_modules" / name / "build")
                      for name in ("workbox-sw", "workbox-core", "workbox-routing", "workbox-strategies"))]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG and env_bool("O2O_MANIFEST_STATIC", True)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- security (strict unless DEBUG) -------------------------------------------------

SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if env_bool("USE_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600)  # one shift
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# Where login sessions live (docs/scaling.md).  "cache" (the default): in Redis, in the "sessions"
# cache alias; a POS request reads and writes its session without touching PostgreSQL, and
# signing out (or an expired session) deletes the key, so a session stays revocable on the server.
# "db": in the django_session table (one read and one write per POS request).  "signed_cookies":
# nothing on the server, but a session can then not be ended from the server before it expires
# and the cookie carries the till's basket copy (4 KB cookie limit): for special cases only.
SESSION_ENGINES = {
    "cache": "django.contrib.sessions.backends.cache",
    "db": "django.contrib.sessions.backends.db",
    "signed_cookies": "django.contrib.sessions.backends.signed_cookies",
}
SESSION_BACKEND = os.environ.get("SESSION_BACKEND", "").strip().lower() or "cache"
if SESSION_BACKEND not in SESSION_ENGINES:
    raise ImproperlyConfigured(f"SESSION_BACKEND must be one of {', '.join(SESSION_ENGINES)}, "
                               f"not {SESSION_BACKEND!r}")
SESSION_ENGINE = SESSION_ENGINES[SESSION_BACKEND]
SESSION_CACHE_ALIAS = "sessions"

# --- API ------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "COERCE_DECIMAL_TO_STRING": True,
    "EXCEPTION_HANDLER": "o2o.api.exception_handler",
    # Partner keys first: their 401 carries WWW-Authenticate: Bearer.
    "DEFAULT_AUTHENTICATION_CLASSES": ["o2o.apiauth.PartnerKeyAuthentication",
                                       "rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["o2o.apiauth.HasScope"],
    # Redis counters (o2o.ratelimit), not DRF's cache throttles.
    "DEFAULT_THROTTLE_CLASSES": ["o2o.ratelimit.RateLimit"],
    "DEFAULT_PAGINATION_CLASS": "o2o.api.CursorPage",
    "DEFAULT_PARSER_CLASSES": ["o2o.api.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_METADATA_CLASS": None,
    "UNAUTHENTICATED_USER": None,
}
# Requests per minute (o2o.ratelimit): per partner key or staff user (a key may set its own), and per
# client address for unauthenticated calls.  Provider notifications with a valid signature are not
# anonymous and never count against the per-address limit.
API_RATE_LIMIT_PER_MINUTE = env_int("API_RATE_LIMIT_PER_MINUTE", 600)
API_RATE_LIMIT_ANONYMOUS_PER_MINUTE = env_int("API_RATE_LIMIT_ANONYMOUS_PER_MINUTE", 120)
SPECTACULAR_SETTINGS = {
    "TITLE": "o2o partner API",
    "DESCRIPTION": "Orders, stock, members and payments for partner systems. Every error is "
                   '{"code", "message", "fields"?} with a stable code; messages follow Accept-Language '
                   "(zh-Hans, en). Writes need an Idempotency-Key header; lists use cursor pagination.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # Served from STATIC_URL (drf-spectacular-sidecar), never from a CDN: /api/v1/docs/ works
    # offline and where CDNs are blocked.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # After the enums: the enforced rules every endpoint shares, then the links between operations.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "o2o.api.schema_rules",
                             "orders.api.schema_links.schema_links"],
    "ENUM_NAME_OVERRIDES": {
        "TenderEnum": "payments.models.Tender",
        "OrderStatusEnum": "orders.models.Status",
        "ChannelEnum": "orders.models.Channel",
        "FulfillmentEnum": "orders.models.Fulfillment",
        "BucketEnum": "inventory.models.Bucket",
        "WebhookDeliveryStatusEnum": "integrations.models.WebhookDelivery.Status",
        "PaymentStatusEnum": "payments.models.Payment.Status",
        "OrderPaymentStatusEnum": "orders.selectors.PaymentState.CHOICES",
    },
}

# Browsers on these origins (comma-separated, e.g. https://shop.example.com) may call /api/v1/
# directly; nothing else on the site answers cross-origin requests.  Partner keys travel in the
# Authorization header, never in cookies, so credentials are not allowed.
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
CORS_URLS_REGEX = r"^/api/v1/"
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_METHODS = ("DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT")
CORS_ALLOW_HEADERS = ("accept", "accept-language", "authorization", "content-type", "idempotency-key",
                      "if-match")
CORS_EXPOSE_HEADERS = ("ETag", "Location", "Retry-After", "RateLimit-Limit", "RateLimit-Remaining",
                       "RateLimit-Reset")
CORS_PREFLIGHT_MAX_AGE = 3600

# Webhook receivers on private networks are refused (a subscription must not make the server call
# internal services) unless listed here: host names, addresses or CIDR networks, comma-separated.
WEBHOOK_ALLOWED_PRIVATE_RECEIVERS = env_list("WEBHOOK_ALLOWED_PRIVATE_RECEIVERS")

# --- domain defaults ------------------------------------------------------------

# Minutes an unpaid online order holds its reservation before the beat task releases it.
O2O_RESERVATION_TTL_MINUTES = env_int("O2O_RESERVATION_TTL_MINUTES", 30)
# Bounded retries of a service on deadlock / serialization failure.
O2O_DB_RETRY_ATTEMPTS = env_int("O2O_DB_RETRY_ATTEMPTS", 5)
# The sold-out gate (inventory.soldout): a (warehouse, SKU) refused for want of stock with nothing
# left is marked in Redis for a few seconds, so further attempts are refused before a transaction.
# It only rejects early (the conditional stock update decides) and is skipped while Redis is down.
STOCK_SOLDOUT_GATE = env_bool("STOCK_SOLDOUT_GATE", True)
STOCK_SOLDOUT_TTL_SECONDS = env_int("STOCK_SOLDOUT_TTL_SECONDS", 10)
STOCK_SOLDOUT_PREFIX = os.environ.get("STOCK_SOLDOUT_PREFIX", "o2o:soldout")

# POS: the largest discount (percent of the sale) a clerk gives without a manager; manager
# PIN attempts allowed per user in a window; minutes without activity before a POS login ends.
POS_CLERK_DISCOUNT_LIMIT_PERCENT = env_int("POS_CLERK_DISCOUNT_LIMIT_PERCENT", 10)
POS_APPROVAL_MAX_ATTEMPTS = env_int("POS_APPROVAL_MAX_ATTEMPTS", 5)
POS_APPROVAL_WINDOW_SECONDS = env_int("POS_APPROVAL_WINDOW_SECONDS", 300)
POS_IDLE_TIMEOUT_MINUTES = env_int("POS_IDLE_TIMEOUT_MINUTES", 30)
# The adapter that charges the WeChat Pay / Alipay payment codes scanned at the counter: empty for
# each wallet's own provider, "sandbox" to charge them offline (development and demos).
POS_MICROPAY_PROVIDER = os.environ.get("POS_MICROPAY_PROVIDER", "sandbox" if DEBUG else "")

# Payment providers (docs/payments.md).  A key or certificate setting holds the PEM text or the path
# of a file holding it.  Unset: the provider is not configured and its tender is not offered; the
# sandbox stays the default for development and tests.
WECHAT_PAY_MCHID = os.environ.get("WECHAT_PAY_MCHID", "")
WECHAT_PAY_APPID = os.environ.get("WECHAT_PAY_APPID", "")
# The mini-program's own AppID when it differs from WECHAT_PAY_APPID (both bound to the merchant).
WECHAT_PAY_MINI_APPID = os.environ.get("WECHAT_PAY_MINI_APPID", "")
WECHAT_PAY_APIV3_KEY = os.environ.get("WECHAT_PAY_APIV3_KEY", "")
WECHAT_PAY_PRIVATE_KEY = os.environ.get("WECHAT_PAY_PRIVATE_KEY", "")
WECHAT_PAY_CERT_SERIAL = os.environ.get("WECHAT_PAY_CERT_SERIAL", "")
WECHAT_PAY_PUBLIC_KEY = os.environ.get("WECHAT_PAY_PUBLIC_KEY", "")
WECHAT_PAY_PUBLIC_KEY_ID = os.environ.get("WECHAT_PAY_PUBLIC_KEY_ID", "")
WECHAT_PAY_CERT_DIR = os.environ.get("WECHAT_PAY_CERT_DIR", "")
WECHAT_PAY_NOTIFY_URL = os.environ.get("WECHAT_PAY_NOTIFY_URL", "")
WECHATPAY_API_URL = os.environ.get("WECHATPAY_API_URL", "https://api.mch.weixin.qq.com")
ALIPAY_APP_ID = os.environ.get("ALIPAY_APP_ID", "")
ALIPAY_APP_PRIVATE_KEY = os.environ.get("ALIPAY_APP_PRIVATE_KEY", "")
ALIPAY_PUBLIC_KEY = os.environ.get("ALIPAY_PUBLIC_KEY", "")
ALIPAY_NOTIFY_URL = os.environ.get("ALIPAY_NOTIFY_URL", "")
ALIPAY_GATEWAY_URL = os.environ.get("ALIPAY_GATEWAY_URL", "https://openapi.alipay.com/gateway.do")
# Seconds one provider call may take; tries of a read-only call (query, bill) on a transport error;
# how long a payment code the customer still has to confirm is waited for, and how often it is asked.
PAYMENTS_HTTP_TIMEOUT_SECONDS = env_int("PAYMENTS_HTTP_TIMEOUT_SECONDS", 10)
PAYMENTS_QUERY_ATTEMPTS = env_int("PAYMENTS_QUERY_ATTEMPTS", 3)
PAYMENTS_CODE_WAIT_SECONDS = env_int("PAYMENTS_CODE_WAIT_SECONDS", 45)
PAYMENTS_CODE_POLL_SECONDS = env_int("PAYMENTS_CODE_POLL_SECONDS", 3)
# Online payments still pending this many minutes after they started are asked about at the
# provider (a lost notification) and captured when paid (payments-query-pending, beat).
PAYMENTS_QUERY_PENDING_AFTER_MINUTES = env_int("PAYMENTS_QUERY_PENDING_AFTER_MINUTES", 5)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
