# The Ruby worker: the `tasker_core` source gem built and `gem install`ed (its magnus extension
# compiles against the image's Ruby), then copied with that Ruby into a slim image.
# Build context: the repository root.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends ruby-dev libclang-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# ruby-setup.sh checks for rspec; the image only needs the gem.
RUN ln -s /bin/true /usr/local/bin/rspec && bash tools/ruby-setup.sh

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ruby curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/.gems /opt/gems
COPY workers/ruby/examples /app/handlers
COPY fixtures/task_templates/ruby /app/templates
ENV GEM_HOME=/opt/gems GEM_PATH=/opt/gems \
    TASKER_TEMPLATE_PATH=/app/templates \
    TASKER_HANDLER_PATH=/app/handlers/blog:/app/handlers/test_workflows \
    TASKER_WORKER_BIND=0.0.0.0:8081
EXPOSE 8081
CMD ["/opt/gems/bin/tasker-worker"]
