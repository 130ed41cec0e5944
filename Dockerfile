# syntax=docker/dockerfile:1
# entra-access: one image, one process (`entra-access run`) serving the webhook on every replica
# and running the controller on the Lease holder.
#
#   docker build -t entra-access:0.1.0 .

# ---- build: compile TypeScript, then drop the dev dependencies ----
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The exact lockfile tree. No install scripts: no production dependency needs one, and the dev
# dependencies' scripts only fetch a Node binary and PostgreSQL for local tests.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# What `npm run build` runs (tsc -p tsconfig.build.json: src/**/*.ts -> dist/src/**/*.js), called
# with this image's Node 24: without install scripts the `node` devDependency has no binary, and
# `npm run` would put its empty bin/ first on PATH.
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# ---- runtime: Node.js 24 and the app, nothing else (no shell, no package manager) ----
FROM gcr.io/distroless/nodejs24-debian12:nonroot
WORKDIR /app
ENV NODE_ENV=production
# package.json carries "type": "module", which dist/*.js needs.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# nonroot: 65532:65532, as the chart's securityContext expects.
USER 65532:65532
EXPOSE 9443 8080 8081
# `entra-access run`; flags from the chart's args (or ENTRA_ACCESS_* environment variables).
# --max-semi-space-size=16: on a large node V8 lets the young generation grow to 64 MB per half,
# memory it keeps; 16 MB measured 305 -> ~220 MB RSS at 2,000 SAs / 200 resources with no
# slowdown (docs/benchmarks.md). bench/operator.ts runs the operator with the same flags.
ENTRYPOINT ["/nodejs/bin/node", "--max-semi-space-size=16", "dist/src/main.js", "run"]
