# syntax=docker/dockerfile:1.7
# Container images of dirsync, one multi-stage build for every target:
#   docker build --target coordinator -t dirsync/coordinator .   # `dirsync` (serve, migrate, the CLI)
#   docker build --target worker      -t dirsync/worker .        # `dirsync-worker`
#   docker build --target simulators  -t dirsync/simulators .    # graph-sim, scim-sim, demo
#   docker build --target cli         -t dirsync/cli .           # `dirsync` + a busybox shell, for one-shot scripts
# The runtime images are distroless (glibc + libgcc, no shell, no package manager) and run as
# the image's `nonroot` user (uid 65532): nothing in them can be used to look around.
# Health is HTTP in the binaries (`/healthz` and `/readyz` in both coordinator and worker);
# orchestrators probe it themselves (Kubernetes httpGet), and for runtimes that run the check
# inside the container (compose healthchecks) each image carries `/usr/local/bin/healthcheck`,
# a 30-line std-only HTTP GET built below, so no shell or curl is needed for that either.
# See docs/deploy.md.

ARG RUST_IMAGE=rust:1.95-bookworm
# Same Debian release as the builder, so the glibc the binaries link against is there.
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot
ARG CLI_IMAGE=gcr.io/distroless/cc-debian12:debug-nonroot

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
# The probe first: it depends on nothing in the repository, so its layer survives every
# source change.
COPY <<'RUST' /src/healthcheck.rs
//! `healthcheck URL`: exit 0 when `GET URL` (http only) answers 2xx within 3 s, else 1.
//! The health probe of compose healthchecks in images without a shell or curl.
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

fn main() {
    let url = std::env::args().nth(1).unwrap_or_else(|| "http://127.0.0.1:8480/healthz".into());
    if let Err(e) = probe(&url) {
        eprintln!("healthcheck {url}: {e}");
        std::process::exit(1);
    }
}

fn probe(url: &str) -> Result<(), String> {
    let rest = url.strip_prefix("http://").ok_or("only http:// urls are probed")?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    let timeout = Duration::from_secs(3);
    let addr = authority.to_socket_addrs().map_err(|e| e.to_string())?.next().ok_or("no address")?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    stream.take(64).read_to_end(&mut head).map_err(|e| e.to_string())?;
    let head = String::from_utf8_lossy(&head);
    match head.split_whitespace().nth(1) {
        Some(code) if code.len() == 3 && code.starts_with('2') => Ok(()),
        other => Err(format!("answered {other:?}")),
    }
}
RUST
RUN rustc --edition 2021 -C opt-level=2 -C strip=symbols -o /usr/local/bin/healthcheck /src/healthcheck.rs
COPY . .
# Cache mounts keep the crates.io downloads and the compiled dependencies between builds, so
# a source change recompiles only the workspace crates. The target directory is a cache
# mount, hence the copy of the binaries out of it.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked \
        -p dirsync-coordinator -p dirsync-worker -p dirsync-load-tests --bins \
 && mkdir -p /out \
 && cp target/release/dirsync target/release/dirsync-worker \
       target/release/graph-sim target/release/scim-sim target/release/demo /out/

# The Graph and Webex SCIM simulators and the self-contained demo (stand-ins for Entra ID
# and Webex; pass `--bind 0.0.0.0` to the simulators in a container).
FROM ${RUNTIME_IMAGE} AS simulators
COPY --from=builder /usr/local/bin/healthcheck /usr/local/bin/healthcheck
COPY --from=builder /out/graph-sim /out/scim-sim /out/demo /usr/local/bin/
EXPOSE 8081 8082
USER nonroot
ENTRYPOINT ["/usr/local/bin/graph-sim"]
CMD ["--help"]

# `dirsync` on the distroless *debug* image, whose busybox shell lets a one-shot job pipe one
# command into the next (compose's `setup`: create an admin token, then add the demo tenant
# with it). Not for long-running processes: use `coordinator` for those.
FROM ${CLI_IMAGE} AS cli
COPY --from=builder /usr/local/bin/healthcheck /usr/local/bin/healthcheck
COPY --from=builder /out/dirsync /usr/local/bin/dirsync
USER nonroot
ENTRYPOINT ["/usr/local/bin/dirsync"]
CMD ["--help"]

# dirsync-worker: /metrics, /healthz, /readyz on 9465.
FROM ${RUNTIME_IMAGE} AS worker
COPY --from=builder /usr/local/bin/healthcheck /usr/local/bin/healthcheck
COPY --from=builder /out/dirsync-worker /usr/local/bin/dirsync-worker
ENV WORKER_HTTP_ADDR=0.0.0.0:9465
EXPOSE 9465
USER nonroot
ENTRYPOINT ["/usr/local/bin/dirsync-worker"]

# Last, so a plain `docker build .` makes it.
# dirsync: `serve` (coordinator: scheduler + admin API + /healthz + /metrics on 8480),
# `migrate` (the migration Job), and the operator CLI.
FROM ${RUNTIME_IMAGE} AS coordinator
COPY --from=builder /usr/local/bin/healthcheck /usr/local/bin/healthcheck
COPY --from=builder /out/dirsync /usr/local/bin/dirsync
# Inside a container the HTTP face must listen on every interface (default: loopback).
ENV DIRSYNC_HTTP_ADDR=0.0.0.0:8480
EXPOSE 8480
USER nonroot
ENTRYPOINT ["/usr/local/bin/dirsync"]
CMD ["serve"]
