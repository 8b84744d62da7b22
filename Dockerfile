# syntax=docker/dockerfile:1
# Tollgate as a container: the ext_proc policy engine only (`tollgate serve`), what a mesh or a compose stack
# runs next to Envoy. Two stages: the build stage compiles service/ to dist/ (`npm run build`, source maps
# included) and prunes dev dependencies; the runtime stage holds compiled JavaScript, production
# node_modules and the example policies, runs as an unprivileged user, and needs no TypeScript loader.
#
#   docker build -t tollgate:0.1.0 .
#   docker run --rm -e TOLLGATE_GRPC_SHARED_SECRET=… -e TOLLGATE_PLAN_KEY=… -p 127.0.0.1:50051:50051 tollgate:0.1.0
#
# The image starts in production mode: without TOLLGATE_GRPC_SHARED_SECRET (or mTLS) and TOLLGATE_PLAN_KEY it
# refuses to start (docs/security.md). Checked by test/deploy/dockerfile.test.ts (docs/deploy.md).

# Pinned: the Node release the test suite runs on. Bump it deliberately (and the tests with it).
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /src
COPY package.json package-lock.json ./
# Scripts off: `prepare` would build before the sources are here; no dependency needs an install script.
RUN npm ci --ignore-scripts --no-audit --no-fund

FROM deps AS build
COPY tsconfig*.json ./
COPY service ./service
COPY proto ./proto
COPY bin ./bin
COPY scripts ./scripts
RUN npm run build && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# docker-compose's stand-in providers (test/support/fake-provider-server.ts; dev dependencies, TypeScript
# through tsx). A demo image only: `docker compose` builds it with `target: fake-provider`.
FROM ${NODE_IMAGE} AS fake-provider
WORKDIR /src
COPY --from=deps /src/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY service ./service
COPY test/support ./test/support
USER 1000:1000
EXPOSE 8000 8001 8002 8003
CMD ["node", "--import", "tsx", "test/support/fake-provider-server.ts"]

# The production image (the default target: keep it last).
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    TOLLGATE_MODE=production \
    TOLLGATE_GRPC_ADDR=0.0.0.0:50051 \
    TOLLGATE_HTTP_ADDR=0.0.0.0:9464 \
    TOLLGATE_CONFIG=/app/policies \
    TOLLGATE_SPOOL_DIR=/var/lib/tollgate/spool \
    TOLLGATE_LINEAGE=stdout
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/bin ./bin
COPY --from=build /src/proto ./proto
COPY policies ./policies
COPY deploy/docker/healthcheck.mjs ./deploy/docker/healthcheck.mjs
# The lineage spool is the only thing written; everything else stays read-only (and owned by root).
RUN mkdir -p /var/lib/tollgate/spool && chown -R 1000:1000 /var/lib/tollgate
# The image's `node` user, by number so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
# 50051: ext_proc gRPC (HTTP/2) for Envoy; 9464: /metrics, /healthz, /readyz.
EXPOSE 50051 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 CMD ["node", "deploy/docker/healthcheck.mjs"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "--enable-source-maps", "bin/tollgate.js"]
CMD ["serve"]
