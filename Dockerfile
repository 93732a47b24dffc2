# spl container image (SPEC section 10).
#   docker build -t syncropic/spl:dev .
#   docker run -d --name spl -p 9100:9100 -v spl-home:/syncropel \
#     -v "$HOME/backups/syncropel:/home/syncropel/.local/share/syncropel/backups" \
#     --restart unless-stopped syncropic/spl:dev
#   docker exec spl spl status
# A bind-mounted backups dir must be writable by uid 10001 (chown -R 10001:10001 <dir>).

# --- build: compile the single binary ------------------------------------------------------------
FROM oven/bun:1 AS build
WORKDIR /src
# Dependencies first so source edits do not invalidate the install layer.
COPY package.json bun.lock ./
RUN bun install --frozen-lockfile
COPY . .
# Optional: --build-arg SPL_VERSION=X.Y.Z (default: package.json). .git is not in the context, so
# the baked-in commit reads "unknown".
ARG SPL_VERSION=
ARG TARGETARCH
RUN case "${TARGETARCH:-amd64}" in \
      amd64) target=bun-linux-x64 ;; \
      arm64) target=bun-linux-arm64 ;; \
      *) echo "unsupported architecture: $TARGETARCH" >&2; exit 1 ;; \
    esac \
 && bun .ci/build.ts --outfile /out/spl --target "$target" ${SPL_VERSION:+--version "$SPL_VERSION"} \
 && /out/spl version

# --- runtime: slim Debian, non-root, tini as PID 1 -----------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini curl \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 syncropel \
 && useradd --uid 10001 --gid 10001 --no-log-init --create-home --home-dir /home/syncropel \
      --shell /usr/sbin/nologin syncropel \
 && mkdir -p /syncropel /home/syncropel/.local/share/syncropel/backups \
 && chown -R syncropel:syncropel /syncropel /home/syncropel
COPY --from=build /out/spl /usr/local/bin/spl

# Everything the daemon writes (store, config, secrets, logs, run dir) lives under /syncropel;
# backups go to ~/.local/share/syncropel/backups, which is worth mounting off the volume.
ENV HOME=/home/syncropel \
    SYNCROPEL_HOME=/syncropel
VOLUME /syncropel
USER syncropel
WORKDIR /home/syncropel
EXPOSE 9100

# /health is exempt from auth and permissions, so the probe needs no token.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD curl -fsS http://127.0.0.1:9100/health || exit 1

# tini forwards SIGTERM to spl and reaps children; spl serves in the foreground.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/spl"]
CMD ["serve", "--port", "9100", "--host", "0.0.0.0"]
