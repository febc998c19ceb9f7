# Multi-stage build: compile with the Rust toolchain, run on a small Debian
# image as a non-root user. Docker cannot run on the project's development
# machines; this file is kept minimal and is exercised where Docker exists.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY macros ./macros
COPY src ./src
COPY assets ./assets
COPY seeds ./seeds
COPY tests ./tests
COPY benches ./benches
RUN cargo build --release --locked --bin alawael

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /app alawael
WORKDIR /app
COPY --from=build /src/target/release/alawael /usr/local/bin/alawael
COPY config ./config
USER alawael
ENV ALAWAEL_ENV=production
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/health/live || exit 1
CMD ["alawael", "serve", "--bind", "0.0.0.0:8080"]
