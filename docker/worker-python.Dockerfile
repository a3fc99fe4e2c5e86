# The Python worker: the `tasker-core` wheel (pyo3 extension built by maturin) installed into a
# slim Python image, plus the Python blog and test-workflow handlers.
# Build context: the repository root.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3-venv python3-pip \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# pip builds the wheel with the maturin pinned in pyproject.toml's build-system.
RUN python3 -m venv /opt/build && /opt/build/bin/pip wheel --no-deps -w /wheels ./workers/python

FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl
COPY workers/python/examples /app/handlers
COPY fixtures/task_templates/python /app/templates
ENV TASKER_TEMPLATE_PATH=/app/templates \
    TASKER_HANDLER_PATH=/app/handlers/blog:/app/handlers/test_workflows \
    TASKER_WORKER_BIND=0.0.0.0:8081
EXPOSE 8081
CMD ["tasker-worker"]
