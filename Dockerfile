# syntax=docker/dockerfile:1
#
# momoflow image: one image, two roles (a worker by default; `momoflow gateway` for the HTTP
# gateway). Used by docker-compose.yml, which also does the health checks (no HEALTHCHECK
# here: the worker has no HTTP port, the gateway's check lives in compose).
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

COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels

# An empty, non-root working directory: settings come from MOMOFLOW_* variables (pydantic
# also reads ./.env, which the image deliberately does not contain).
WORKDIR /app
RUN chown momoflow:momoflow /app
USER momoflow:momoflow

CMD ["momoflow", "worker"]
