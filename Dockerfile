# spl container image (SPEC section 10). README "Docker" has the commands; in short:
#   docker build --build-arg SPL_COMMIT="$(git rev-parse --short=12 HEAD)" -t syncropic/spl:dev .
#   docker run -d --name spl -p 9100:9100 --stop-timeout 30 -v spl-home:/syncropel \
#     -v "$HOME/backups/syncropel:/home/syncropel/.local/share/syncropel/backups" \
#     --restart unless-stopped syncropic/spl:dev
# A bind-mounted backups dir must be writable by uid 10001 (chown -R 10001:10001 <dir>).
# Base images are pinned by version; the builder's Bun is the project's (package.json
# "packageManager"; test/docker-cmd.test.ts keeps the two equal).

ARG BUN_VERSION=1.4.5
ARG DEBIAN_VERSION=12.12

# --- build: compile the single binary ------------------------------------------------------------
FROM oven/bun:${BUN_VERSION}-debian AS build
WORKDIR /src
# Dependencies first so source edits do not invalidate the install layer.
COPY package.json bun.lock ./
RUN bun install --frozen-lockfile
COPY . .
# SPL_VERSION must match package.json (checked by test/docker-cmd.test.ts); the label below uses it.
# .git is not in the context and the image has no git: the commit comes in as a build arg.
ARG SPL_VERSION=0.1.0
ARG SPL_COMMIT=unknown
ARG TARGETARCH
RUN case "${TARGETARCH:-amd64}" in \
      amd64) target=bun-linux-x64 ;; \
      arm64) target=bun-linux-arm64 ;; \
      *) echo "unsupported architecture: $TARGETARCH" >&2; exit 1 ;; \
    esac \
 && SPL_COMMIT="$SPL_COMMIT" bun .ci/build.ts --outfile /out/spl --target "$target" --version "$SPL_VERSION" \
 && /out/spl version

# --- runtime: slim Debian, non-root, tini as PID 1 -----------------------------------------------
FROM debian:${DEBIAN_VERSION}-slim
ARG SPL_VERSION=0.1.0
ARG SPL_COMMIT=unknown
LABEL org.opencontainers.image.title="spl" \
      org.opencontainers.image.description="Syncropel instance daemon and CLI" \
      org.opencontainers.image.version="${SPL_VERSION}" \
      org.opencontainers.image.revision="${SPL_COMMIT}" \
      org.opencontainers.image.source="https://github.com/syncropic/spl"
# The Debian point release pins these packages' versions.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini curl \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 syncropel \
 && useradd --uid 10001 --gid 10001 --no-log-init --create-home --home-dir /home/syncropel \
      --shell /usr/sbin/nologin syncropel \
 && mkdir -p /syncropel /home/syncropel/.local/share/syncropel/backups \
 && chown -R syncropel:syncropel /syncropel /home/syncropel
COPY --from=build /out/spl /usr/local/bin/spl

# Everything the daemon writes (store, config, secrets, logs, run dir) lives under /syncropel.
# Backups are a volume of their own, so a snapshot never lives only in the container layer; mount
# a host directory there to keep them off the store's volume.
ENV HOME=/home/syncropel \
    SYNCROPEL_HOME=/syncropel
VOLUME ["/syncropel", "/home/syncropel/.local/share/syncropel/backups"]
USER syncropel
WORKDIR /home/syncropel
EXPOSE 9100

# /health needs no token. The daemon binds first and answers 503 "starting" until its store is
# checked, backed up and folded, so the probe fails while starting; the start period covers that
# for a large store.
HEALTHCHECK --interval=10s --timeout=3s --start-period=300s --retries=3 \
  CMD curl -fsS http://127.0.0.1:9100/health || exit 1

# SIGTERM is a graceful stop: up to 10 s for requests, then flush and checkpoint. Docker's default
# 10 s before SIGKILL is too short: run with --stop-timeout 30 (compose: stop_grace_period: 30s).
STOPSIGNAL SIGTERM

# tini forwards SIGTERM to spl and reaps children; spl serves in the foreground.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/spl"]
CMD ["serve", "--port", "9100", "--host", "0.0.0.0"]
