# One image for the five services; docker-compose.yml picks the service with SERVICE.
# The services run the JavaScript that packages/lab/src/Build.ts makes from their TypeScript
# (types stripped as Node strips them, so stack traces keep the sources' lines), not the .ts
# files: Node's type stripper would hold 17 MiB in each service.

FROM node:24.21-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/with-node.sh scripts/with-node.sh
COPY packages/domain/package.json packages/domain/package.json
COPY packages/infra/package.json packages/infra/package.json
COPY packages/user/package.json packages/user/package.json
COPY packages/gateway/package.json packages/gateway/package.json
COPY packages/transaction/package.json packages/transaction/package.json
COPY packages/wallet/package.json packages/wallet/package.json
COPY packages/webhook/package.json packages/webhook/package.json
COPY packages/ops/package.json packages/ops/package.json
COPY packages/client/package.json packages/client/package.json
# The workshop and the test kit are workspaces too, so npm ci needs their manifests; .dockerignore
# keeps the rest of them out.
COPY packages/lab/package.json packages/lab/package.json
COPY packages/testkit/package.json packages/testkit/package.json
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:24.21-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules node_modules
COPY package.json ./
COPY proto proto
COPY packages packages
RUN node packages/lab/src/Build.ts --no-bundle && rm -r packages/lab/src
# The local CA and certificates for compose's one-shot `pki` service (docker-compose.yml); the
# directory belongs to node so that the named volume mounted on it is writable by the service.
COPY scripts/pki.ts scripts/pki.ts
RUN mkdir -p /pki && chown node:node /pki
USER node
ARG SERVICE
ENV SERVICE=${SERVICE}
# V8's heap bounds, as packages/lab/src/start.ts applies them (README.md, WALLETUN_NODE_OPTIONS).
ENV WALLETUN_NODE_OPTIONS="--max-semi-space-size=16 --max-old-space-size=128"
# glibc malloc's arenas, as packages/lab/src/start.ts sets them (README.md, MALLOC_ARENA_MAX).
ENV MALLOC_ARENA_MAX=2
CMD ["sh", "-c", "exec node ${WALLETUN_NODE_OPTIONS} packages/${SERVICE}/dist/main.js"]
