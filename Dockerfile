# syntax=docker/dockerfile:1
#
# The `quarry` server in a small Debian image.
#
#   docker build -t quarry .
#   docker run -p 8000:8000 -e LLM_BASE_URL=... -e QUARRY_DATABASE_URL=... quarry
#
# Needs BuildKit (the default builder of current Docker) for the cache mounts below.

# --- Build ------------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS build

# host/build.rs compiles the built-in plugins for this target and embeds them in the binary.
RUN rustup target add wasm32-wasip2

WORKDIR /src
# The workspace: its members are host/ and tests/; host/build.rs reads plugins/ (a workspace of
# its own, with its own Cargo.lock) and wit/ next to host/.
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY wit ./wit
COPY host ./host
COPY plugins ./plugins
COPY tests ./tests

# The registry and target/ (which also holds the plugins' build, target/wasm) are cache mounts,
# so the binary is copied out of target/ in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p quarry --bin quarry \
    && install -m 0755 target/release/quarry /usr/local/bin/quarry

# --- Run --------------------------------------------------------------------------------------
FROM debian:bookworm-slim

# CA certificates for HTTPS to LLM APIs and TLS to databases (rustls reads the system roots too).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --system --user-group --uid 10001 --no-create-home --shell /usr/sbin/nologin quarry \
    && mkdir -p /data /plugins.d \
    && chown quarry:quarry /data

COPY --from=build /usr/local/bin/quarry /usr/local/bin/quarry

# /data: the SQLite metadata store (when QUARRY_METADATA_URL is not set) and the cache of
# compiled plugins. /plugins.d: drop-in plugins, one folder each. An optional ./quarry.toml is
# read from the working directory (or set QUARRY_CONFIG).
ENV QUARRY_DATA_DIR=/data \
    QUARRY_PLUGINS_DIR=/plugins.d \
    SERVER_HOST=0.0.0.0 \
    SERVER_PORT=8000
WORKDIR /app
VOLUME ["/data"]
USER quarry
EXPOSE 8000

# GET /ping over bash's /dev/tcp: no curl in the image. The first start compiles the built-in
# plugins (about a second each); later starts load them from the cache in /data.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${SERVER_PORT:-8000} && printf 'GET /ping HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

ENTRYPOINT ["quarry"]
CMD ["serve"]
