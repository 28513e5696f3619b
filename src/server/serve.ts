import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import type { ServeConfig } from '../config.js';
import { loadOcrModel } from '../loaders/index.js';
import { ensureBundledPackage } from '../pack/index.js';
import { TrustStore, verifyPackage } from '../verify/index.js';
import { createApp, type ServingVersion } from './app.js';

export interface RunningServer {
  readonly app: FastifyInstance;
  /** The address it listens on, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  /** Stops accepting, lets in-flight requests finish, releases the model. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * Verifies and loads the model (the given package, or the bundled PP-OCRv4 signed with a
 * development key in the data folder), then listens.
 */
export async function startServer(
  config: ServeConfig,
  logger = pino({ level: config.logLevel }),
): Promise<RunningServer> {
  let packagePath: string;
  let trustPath: string;
  if (config.model && config.trust) {
    packagePath = config.model;
    trustPath = config.trust;
  } else {
    const bundled = await ensureBundledPackage(config.data);
    packagePath = bundled.packagePath;
    trustPath = config.trust ?? bundled.trustPath;
    logger.warn(
      { trust: bundled.trustPath, created: bundled.createdKey },
      'serving the bundled model signed with a development key; production runs name their own trust roots',
    );
  }
  const trust = await TrustStore.load(trustPath);
  const pkg = await verifyPackage(packagePath, {
    trust,
    keepBytes: true,
    allowLegacySignatures: config.allowLegacySignatures,
  });
  if (pkg.legacy)
    logger.warn(
      { unprotected: pkg.legacy.unprotected },
      'legacy signature: these entries are not protected by it',
    );
  const model = await loadOcrModel(pkg);
  const serving: ServingVersion = {
    model,
    sha256: pkg.sha256,
    signer: pkg.signer,
    loadedAt: new Date(),
    inflight: 0,
  };
  logger.info({ name: model.name, version: model.version, sha256: pkg.sha256 }, 'model active');
  const app = createApp({ serving: () => serving, logger, bodyLimit: config.bodyLimit });
  let url: string;
  try {
    url = await app.listen({ port: config.port, host: config.host });
  } catch (error) {
    await model.release();
    throw error;
  }
  let closing: Promise<void> | undefined;
  return {
    app,
    url,
    close() {
      closing ??= (async () => {
        await app.close();
        await model.release();
      })();
      return closing;
    },
  };
}
