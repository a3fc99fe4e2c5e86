# The TypeScript worker: the `@tasker/worker` npm package (napi-rs addon built for this platform)
# packed with `npm pack` and installed into a slim Node image, plus the compiled blog and
# test-workflow handlers.
# Build context: the repository root.
FROM node:20-bookworm AS build
COPY --from=rust:1.95-bookworm /usr/local/cargo /usr/local/cargo
COPY --from=rust:1.95-bookworm /usr/local/rustup /usr/local/rustup
ENV CARGO_HOME=/usr/local/cargo RUSTUP_HOME=/usr/local/rustup PATH=/usr/local/cargo/bin:$PATH
WORKDIR /src
COPY . .
RUN bash tools/node-setup.sh && cd workers/typescript && npm pack --pack-destination /pkg

FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /pkg /pkg
RUN npm init -y >/dev/null && npm install --omit=dev --no-audit --no-fund /pkg/*.tgz
# The example handlers import the package by relative path (`../../../src/index`), so they sit
# inside the installed package: one module instance serves the bin and the handlers.
COPY --from=build /src/workers/typescript/dist/examples /app/node_modules/@tasker/worker/dist/examples
COPY fixtures/task_templates/typescript /app/templates
ENV TASKER_TEMPLATE_PATH=/app/templates \
    TASKER_HANDLER_PATH=/app/node_modules/@tasker/worker/dist/examples/blog:/app/node_modules/@tasker/worker/dist/examples/test_workflows \
    TASKER_WORKER_BIND=0.0.0.0:8081
EXPOSE 8081
CMD ["npx", "--no-install", "tasker-worker"]
