# syntax=docker/dockerfile:1.7
# permit-sync container image: `docker build -t permit-sync .`
#
# Stage 1 builds the release binary with the Rust toolchain on Debian 12 (bookworm). Stage 2 is
# distroless `cc` on the same Debian release (glibc + libgcc, nothing else: no shell, no package
# manager), running as the distroless `nonroot` user (65532:65532). TLS is rustls with the ring
# provider, so no OpenSSL is needed at run time; the Permit API's CA roots come from the system
# bundle that distroless ships (/etc/ssl/certs), the cluster's from the ServiceAccount's ca.crt.
#
# Pin the bases by digest in CI (`--build-arg RUST_IMAGE=rust:1.95-bookworm@sha256:...`).
ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
# Symbols stay (readable backtraces); the debug info of the release profile is left out of the image.
ENV CARGO_PROFILE_RELEASE_STRIP=debuginfo \
    CARGO_TERM_COLOR=never
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
COPY src ./src
COPY benches ./benches
# BuildKit cache mounts keep the crate registry and the target folder between builds; the binary is
# copied out of the cached target folder in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin permit-sync \
 && install -D -m 0755 target/release/permit-sync /out/permit-sync \
 && /out/permit-sync --version

FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="permit-sync" \
      org.opencontainers.image.description="Declarative GitOps sync controller for Permit.io authorization" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=builder /out/permit-sync /usr/local/bin/permit-sync
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 65532:65532
# --metrics-addr (/healthz, /readyz, /metrics) in the Helm chart.
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/permit-sync"]
CMD ["controller"]
