# agent-idp: the server on Node 24 (LTS), production dependencies only.
#
# Node >= 22.18 is required: `node src/main.ts` runs the TypeScript sources directly through
# Node's type stripping (no build step), and oidc-provider v9 does not support Node 20.
# The `node` devDependency (which pins Node 24 for npm scripts on machines with an older
# Node) is not installed here: the image brings its own Node 24.
FROM node:24-slim

ENV NODE_ENV=production
WORKDIR /app

# Fail the build, not the first start, if the base image's Node cannot strip types.
RUN node -e 'const [maj, min] = process.versions.node.split(".").map(Number); \
  if (maj < 22 || (maj === 22 && min < 18)) { console.error(`Node ${process.versions.node} < 22.18`); process.exit(1); }'

# Dependencies first, so that a change of the sources reuses this layer. bcrypt ships
# prebuilt N-API binaries (linux x64/arm64, glibc), so no compiler is needed.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# What the server reads at run time: sources, settings, migrations, and openapi.yaml
# (its request schemas validate requests).
COPY config ./config
COPY src ./src
COPY migrations ./migrations
COPY openapi ./openapi

# DATA_DIR (./data) is used only without DATABASE_URL (embedded mode); mount a volume there.
RUN mkdir -p /app/data && chown node:node /app/data

USER node
EXPOSE 3000
# Alive: /healthz answers without touching the database, so a database outage does not get the
# container restarted (docker-compose.yml checks /readyz instead, for the load balancer).
# node:24-slim has no curl; Node's fetch does it. PORT as the server reads it.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT || 3000}/healthz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The environment and flags are those of `npm start` (package.json): see the README's Node
# paragraph. Two malloc arenas rather than glibc's eight per core (libuv's and V8's threads each
# grow one of their own under load). Node's compile cache keeps the type-stripped sources, so
# that a restart does not load the TypeScript stripper (amaro, 15 MB of RSS) again.
ENV MALLOC_ARENA_MAX=2 NODE_COMPILE_CACHE=/home/node/.cache/agent-idp
# Exec form: node is PID 1 and gets SIGTERM itself, which drains requests before exiting.
CMD ["node", "--max-semi-space-size=16", "--heap-growing-percent=100", "src/main.ts"]
