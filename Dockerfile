# mab's own image: built for linux/amd64 and linux/arm64 by the multiarch.toml beside this file.
ARG RUST_IMAGE=docker.io/library/rust:1-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked && cp target/release/mab /usr/local/bin/mab

FROM ${RUNTIME_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends podman git ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/mab /usr/local/bin/mab
ENTRYPOINT ["mab"]
