# The Rust worker (`tasker-worker-rust`) with the Rust blog and test-workflow handlers compiled in.
# Build context: the repository root.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p tasker-worker-rust --bin tasker-worker-rust

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/tasker-worker-rust /usr/local/bin/tasker-worker-rust
COPY fixtures/task_templates/rust /app/templates
ENV TASKER_TEMPLATE_PATH=/app/templates TASKER_WORKER_BIND=0.0.0.0:8081
EXPOSE 8081
CMD ["tasker-worker-rust"]
