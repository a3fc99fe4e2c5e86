# The orchestration server (`tasker server`): REST API, orchestration loop, recovery sweep.
# Build context: the repository root.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p tasker-cli --bin tasker

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/tasker /usr/local/bin/tasker
ENV TASKER_BIND=0.0.0.0:8080
EXPOSE 8080
CMD ["tasker", "server"]
