# o2o application image: the web (gunicorn), the Celery worker and Celery beat all run from it.
# See docker-compose.yml for how they are wired to PostgreSQL and Redis.
FROM node:20-slim AS frontend
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=o2o.settings

WORKDIR /app

# The exact dependency tree the test suite ran against.
COPY requirements.lock ./
RUN python -m pip install -r requirements.lock

# Front-end libraries (htmx, ECharts) from the npm lock file, in a build stage of their own.
COPY --from=frontend /build/node_modules ./node_modules

COPY . .

# gettext catalogs are committed compiled (.mo); static files are collected into the image and
# served by WhiteNoise.  Settings need URLs to load, but nothing connects during collectstatic.
RUN DEBUG=0 SECRET_KEY=collectstatic-only \
    DATABASE_URL=postgresql://build@localhost/build REDIS_URL=redis://localhost:6379/0 \
    python manage.py collectstatic --noinput \
 && useradd --system --uid 10001 --home-dir /app --no-create-home o2o \
 && mkdir -p /var/lib/o2o \
 && chown o2o /var/lib/o2o

USER o2o
EXPOSE 8000

# Workers: two per core the container may use (gunicorn.conf.py; GUNICORN_WORKERS overrides).
CMD ["gunicorn", "o2o.wsgi:application", "--config", "gunicorn.conf.py", "--bind", "0.0.0.0:8000", \
     "--limit-request-line", "8190", "--limit-request-field_size", "32768", "--access-logfile", "-"]
