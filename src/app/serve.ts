import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import type { ServeConfig } from '../config.js';
import { HotocrError } from '../errors.js';
import { canRestorePriority, InferenceThreads, Loaders } from '../loaders/index.js';
import { formatReference, OciClient, type OciReference, parseReference } from '../oci/index.js';
import { ensureBundledPackage } from '../pack/index.js';
import { MODEL_NAME } from '../package/manifest.js';
import { Registry, StateStore, warmUp } from '../registry/index.js';
import type { Router } from '../routing/index.js';
import { clearUploads, createApp, type TrustReload } from '../server/index.js';
import { FolderSource } from '../sources/index.js';
import { RegistrySource } from '../sources/registry-source.js';
import { entryDigests, hashFile, TrustStore, verifyPackage } from '../verify/index.js';
import { ExpiryWatch, expiring } from './expiry.js';
import { TrustWatch } from './trust-watch.js';

export interface RunningServer {
  readonly app: FastifyInstance;
  readonly registry: Registry;
  readonly router: Router;
  /** The address it listens on, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  /** Reads the trust store again (a change to the trust folder does it by itself; SIGHUP calls this). */
  reloadTrust(cause: string): Promise<TrustReload>;
  /** Stops accepting, lets in-flight requests finish, releases every version. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * Starts the registry on the data folder, resumes the version that was active before a
 * restart (verifying it again), and loads the configured package: the given one, or with
 * no options the bundled PP-OCRv4 signed with a development key. With `--trust` alone it
 * serves what it resumes, or waits (not ready) for a package from the folder or an upload.
 */
export async function startServer(
  config: ServeConfig,
  logger = pino({ level: config.logLevel }),
): Promise<RunningServer> {
  // Checked before anything starts: a wrong --registry stops the start at once.
  const followed = followedRepositories(config.registry);
  let packagePaths: readonly string[] = [];
  let trustPath: string;
  let source = 'cli';
  if (config.model.length > 0 && config.trust) {
    packagePaths = config.model;
    trustPath = config.trust;
  } else if (config.trust) {
    // Production without a package named: resume the last active version, or wait for one
    // (readServeConfig made sure there is a way for one to arrive).
    trustPath = config.trust;
  } else {
    const bundled = await ensureBundledPackage(config.data);
    packagePaths = [bundled.packagePath];
    trustPath = bundled.trustPath;
    source = 'bundled';
    logger.warn(
      { trust: bundled.trustPath, created: bundled.createdKey },
      'trusting a development key for the bundled model; production runs name their own trust roots (--trust)',
    );
  }
  if (process.platform === 'linux' && !config.mallocArenaMax)
    logger.warn(
      'MALLOC_ARENA_MAX is not set: with it unset, native memory grows with every swap under load; start the server with MALLOC_ARENA_MAX=2 (npm start and the container image do)',
    );
  // A thread may lower its own priority, but only one allowed to raise it again can serve after.
  const loadNice = config.loadNice > 0 && canRestorePriority() ? config.loadNice : 0;
  if (config.loadNice > 0 && loadNice === 0)
    logger.info(
      'new versions load at the same priority as serving: giving threads their priority back after a low-priority load needs CAP_SYS_NICE (docs/HOT-SWAP.md)',
    );
  const initialTrust = await TrustStore.load(trustPath);
  // Read again while serving (trust folder watched, SIGHUP, admin call): packages that arrive
  // after a change are verified with the new trust. Set as soon as the registry exists.
  let trustWatch: TrustWatch | undefined;
  const trust = () => trustWatch?.current ?? initialTrust;
  // The process's inference threads: every built-in loader runs on them, the metrics count them.
  const threads = new InferenceThreads();
  const loaders = await Loaders.create({ plugins: config.loaders, defaultRuntime: config.runtime, threads });
  logger.info(
    {
      loaders: loaders.entries.map((e) => (e.plugin ? `${e.loader.name} (${e.plugin})` : e.loader.name)),
      runtime: loaders.defaultRuntime,
    },
    'model loaders',
  );
  const registry = await Registry.create({
    // Reading and hashing run on the hashing thread; while a version serves, at the loading priority.
    // The bytes of graphs the loader holds already (optimized before) are hashed, not kept.
    verify: (path, { serving, ...policy }) =>
      verifyPackage(path, {
        trust: trust(),
        trustBudgetMs: config.verifyTimeoutMs,
        keepBytes: (entry, manifest) => loaders.keeps(entry, manifest),
        allowLegacySignatures: config.allowLegacySignatures,
        ...policy,
        ...(serving && loadNice > 0 ? { nice: loadNice } : {}),
      }),
    hashFile: (path, { serving }) => hashFile(path, serving && loadNice > 0 ? loadNice : undefined),
    load: (pkg, { serving }) => {
      if (pkg.legacy)
        logger.warn(
          { unprotected: pkg.legacy.unprotected, path: pkg.path },
          'legacy signature: these entries are not protected',
        );
      // Nothing reads the verified bytes after loading: the loader may move them, not copy them.
      // The digests are those the bytes were verified with: a loader may reuse what it made from them.
      return loaders.load(
        { ...pkg, filesMovable: true, digests: entryDigests(pkg) },
        {
          keepThreads: config.keepThreads,
          ...(serving && loadNice > 0 ? { loadNice } : {}),
        },
      );
    },
    warmUp: (model, pkg) => warmUp(model, pkg.manifest),
    store: new StateStore(join(config.data, 'state.json')),
    packagesDir: join(config.data, 'packages'),
    keepWarm: config.keepWarm,
    ...(config.maxModels !== undefined ? { maxModels: config.maxModels } : {}),
  });
  trustWatch = TrustWatch.start(trustPath, registry, initialTrust);
  registry.on((event) => {
    if (event.type === 'trust') {
      if (event.error) logger.error({ event }, `trust store not read again: ${event.error.message}`);
      else logger.info({ event }, `trust store read again (${event.cause})`);
      return;
    }
    const level =
      event.type === 'rejected' || event.type === 'failed' || event.type === 'activation-failed'
        ? 'error'
        : event.type === 'activated' && event.below
          ? 'warn'
          : 'info';
    const what =
      event.type === 'activated' && event.below
        ? `model activated below the highest version activated (${event.below}), by an operator's act`
        : `model ${event.type}`;
    logger[level]({ event }, what);
  });

  for (const r of await registry.restore()) {
    if (r.fellBackFrom)
      logger.warn(
        r,
        `the last active version ${r.fellBackFrom} no longer verifies or loads; serving ${r.version} instead`,
      );
    else if (r.version) logger.info(r, 'resumed the last active version');
    else logger.error(r, 'could not resume any version of this model');
  }
  // Each configured package: activated when its model resumed nothing, else staged beside
  // the resumed version. A fresh start (nothing resumed) fails on the first that does not load.
  const nothingActive = registry.versions().every((v) => v.state !== 'active');
  for (const packagePath of packagePaths) {
    try {
      const v = await registry.submit(packagePath, { source, activate: false });
      if (!registry.active(v.name)) await registry.activate(v.name, v.version);
    } catch (error) {
      if (nothingActive) {
        await registry.close();
        throw error;
      }
      logger.error(
        { err: error, path: packagePath },
        'the configured package was not loaded; the resumed versions keep serving',
      );
    }
  }
  if (nothingActive && registry.versions().every((v) => v.state !== 'active'))
    logger.warn(
      'no model version is active yet: /readyz answers 503 until a package arrives (watched folder or upload)',
    );

  const folder = config.models
    ? await FolderSource.create({
        dir: config.models,
        settleMs: config.settleMs,
        ...(config.quarantine ? { quarantine: config.quarantine } : {}),
        // Handed over before (the same bytes), accepted or refused: not taken again, across restarts.
        submit: (path) => registry.offer(path, { source: 'folder' }),
        onError: (error) => logger.error({ err: error }, 'watched folder'),
      })
    : undefined;
  if (folder) logger.info({ dir: config.models, settleMs: config.settleMs }, 'watching for packages');

  const client = new OciClient({
    insecure: config.registryInsecure,
    dockerConfig: config.dockerConfig,
    tokenRealms: config.registryTokenRealms,
    ...(config.registryToken ? { token: config.registryToken } : {}),
  });
  const registrySources: RegistrySource[] = [];
  try {
    for (const { name, reference } of followed) {
      registrySources.push(
        await RegistrySource.start({
          reference,
          model: name,
          client,
          // Its own folder, emptied at start: never one a watched folder could be (DATA/incoming).
          dir: join(config.data, 'pulls', name),
          pollMs: config.registryPollMs,
          maxBytes: config.uploadLimit,
          // The source's own download: once verified, the registry moves it rather than copying it.
          // A package of another model than the repository's is refused (MODEL_NAME_MISMATCH).
          submit: (path) => registry.offer(path, { source: 'registry', owned: true, expectName: name }),
          handled: (sha256) => registry.isHandled(sha256),
          onEvent: (event) => {
            const level = event.type === 'refused' || event.type === 'unreachable' ? 'warn' : 'info';
            logger[level]({ event, model: name }, `registry source: ${event.type}`);
          },
        }),
      );
      logger.info(
        { following: formatReference(reference), model: name, pollMs: config.registryPollMs },
        'following a registry',
      );
    }
  } catch (error) {
    await Promise.all(registrySources.map((s) => s.close()));
    trustWatch.close();
    folder?.close();
    await registry.close();
    throw error;
  }

  const uploadsDir = join(config.data, 'uploads');
  await clearUploads(uploadsDir);
  let app: FastifyInstance;
  let router: Router;
  let url: string;
  try {
    ({ app, router } = await createApp({
      registry,
      threads,
      logger,
      uploadsDir,
      bodyLimit: config.bodyLimit,
      uploadLimit: config.uploadLimit,
      maxInflight: config.maxInflight,
      maxQueue: config.maxQueue,
      requestTimeoutMs: config.requestTimeoutMs,
      headersTimeoutMs: config.headersTimeoutMs,
      allowPinning: config.allowPinning,
      ...(config.defaultModel ? { defaultModel: config.defaultModel } : {}),
      readyAllModels: config.readyAllModels,
      canary: {
        ...(config.canaryErrorMargin !== undefined ? { errorMargin: config.canaryErrorMargin } : {}),
        ...(config.canaryP99Margin !== undefined ? { p99Margin: config.canaryP99Margin } : {}),
        minRequests: config.canaryMinRequests,
      },
      ...(config.adminToken ? { adminToken: config.adminToken } : {}),
      trust: {
        current: trust,
        reload: (cause) => trustWatch!.reload(cause),
        // Whether a version's kept package still verifies, as a restart would check it.
        retire: () =>
          registry.retire((packagePath, acceptedAt) =>
            verifyPackage(packagePath, { trust: trust(), validAt: acceptedAt }).then(
              () => true,
              () => false,
            ),
          ),
      },
      fleet: {
        sources: registrySources,
        ...(config.registryWebhookSecret ? { webhookSecret: config.registryWebhookSecret } : {}),
        peers: config.peers,
        ...(config.peersDns ? { peersDns: config.peersDns } : {}),
      },
    }));
    router.on((event) =>
      event.rollback || /dropped at restart/.test(event.reason)
        ? logger.warn({ event }, event.reason)
        : logger.info({ event }, 'routing changed'),
    );
    router.announceRestart();
    url = await app.listen({ port: config.port, host: config.host });
  } catch (error) {
    trustWatch.close();
    folder?.close();
    await Promise.all(registrySources.map((s) => s.close()));
    await registry.close();
    throw error;
  }
  const expiry = new ExpiryWatch({
    items: () => expiring(registry, trust().entries()),
    warn: (item, daysLeft) =>
      logger.warn(
        { what: item.what, notAfter: item.at.toISOString(), daysLeft },
        daysLeft < 0
          ? `${item.what} expired on ${item.at.toISOString()}`
          : `${item.what} expires in ${daysLeft} day(s), on ${item.at.toISOString()}: re-sign, or rotate the key (docs/SIGNING.md)`,
      ),
  });
  expiry.start();
  if (!config.adminToken)
    logger.warn(
      'no admin token: the management API refuses every call (set --admin-token-file or HOTOCR_ADMIN_TOKEN)',
    );
  let closing: Promise<void> | undefined;
  const unwatchThreads = threads.on((event) => {
    if (event.type === 'lost') logger.error({ err: event.error }, 'inference thread lost');
    else if (event.type === 'replaced')
      logger.warn(
        { versions: event.versions },
        'inference thread replaced, its versions loaded on a new one',
      );
    else logger.error({ reason: event.reason }, 'inference thread not replaced');
  });
  return {
    app,
    registry,
    router,
    url,
    reloadTrust: (cause) => trustWatch!.reload(cause),
    close() {
      closing ??= (async () => {
        expiry.stop();
        trustWatch!.close();
        unwatchThreads();
        folder?.close();
        // First, so that a verification under way stops now rather than holding up every step below.
        registry.stopTaking();
        await Promise.all(registrySources.map((s) => s.close()));
        await app.close();
        await registry.close();
        // Last: the versions released above have handed their threads back.
        await threads.close();
      })();
      return closing;
    },
  };
}

/**
 * The repositories `--registry` follows, each for one model: `NAME=REFERENCE`, or the
 * repository's last path segment (`registry.example.com/models/zh` follows model `zh`).
 * Two for one model, or one repository twice, is a SETTING_INVALID.
 */
export function followedRepositories(
  entries: readonly string[],
): { name: string; reference: OciReference }[] {
  const followed: { name: string; reference: OciReference }[] = [];
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    const slash = entry.indexOf('/');
    const named = eq > 0 && (slash < 0 || eq < slash);
    const reference = parseReference(named ? entry.slice(eq + 1) : entry, { allowBare: true });
    const name = named ? entry.slice(0, eq) : reference.repository.split('/').pop()!;
    if (!MODEL_NAME.test(name))
      throw new HotocrError(
        'SETTING_INVALID',
        `--registry ${entry}: ${JSON.stringify(name)} is not a model name (lowercase letters, digits, ".", "_" or "-"); name the model with NAME=REFERENCE.`,
      );
    const twice = followed.find((f) => f.name === name);
    if (twice)
      throw new HotocrError(
        'SETTING_INVALID',
        `--registry: two repositories follow model ${name} (${formatReference(twice.reference)} and ${formatReference(reference)}); one repository per model.`,
      );
    const same = followed.find(
      (f) => f.reference.registry === reference.registry && f.reference.repository === reference.repository,
    );
    if (same)
      throw new HotocrError(
        'SETTING_INVALID',
        `--registry: ${reference.registry}/${reference.repository} is followed twice (for ${same.name} and ${name}); one model per repository.`,
      );
    followed.push({ name, reference });
  }
  return followed;
}
