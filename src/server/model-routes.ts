import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HotocrError } from '../errors.js';
import type { ModelVersion, Registry } from '../registry/index.js';
import type { Router } from '../routing/index.js';
import { multipartFile } from './multipart-file.js';
import {
  errors,
  modelsSchema,
  nameParams,
  removedSchema,
  routingSchema,
  routingUpdateSchema,
  type SchemaTypes,
  versionParams,
  versionSchema,
} from './schemas.js';
import type { TrustControl } from './trust.js';
import { saveUpload } from './uploads.js';

export const PACKAGE_TYPES = ['application/zip', 'application/x-zip-compressed', 'application/octet-stream'];

export interface ModelRouteOptions {
  readonly registry: Registry;
  readonly router: Router;
  /** The admin check, run before a body is read. */
  readonly admin: (request: FastifyRequest) => Promise<void>;
  /** Where uploads are written while they arrive and are verified. */
  readonly uploadsDir: string;
  readonly uploadLimit: number;
  /** The trust in use, shown with the models, and the admin routes that read it again and retire. */
  readonly trust?: TrustControl;
}

/** One version as the API and the event stream show it. */
export function describeVersion(v: ModelVersion) {
  return {
    name: v.name,
    version: v.version,
    state: v.state,
    sha256: v.sha256,
    source: v.source,
    signer: v.signer,
    loadedAt: v.loadedAt?.toISOString() ?? null,
    ...(v.loader ? { loader: v.loader } : {}),
    ...(v.manifest.expires ? { expires: v.manifest.expires } : {}),
    inflight: v.inflight,
    ...(v.memory ? { memory: v.memory } : {}),
    ...(v.failure ? { failure: v.failure } : {}),
  };
}

/** The process's memory now, beside the versions' (bytes). */
export function processMemory() {
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
}

/** Every version grouped by model, newest first, and the keys and roots trusted, with when trusting each ends. */
export function describeModels(registry: Registry, trust?: TrustControl) {
  const byName = new Map<string, ModelVersion[]>();
  for (const v of registry.versions()) byName.set(v.name, [...(byName.get(v.name) ?? []), v]);
  return {
    models: [...byName].map(([name, versions]) => ({
      name,
      active: registry.active(name)?.version ?? null,
      versions: versions.map(describeVersion),
    })),
    memory: processMemory(),
    ...(trust ? { trust: trust.current().entries() } : {}),
  };
}

const adminDoc = { security: [{ bearer: [] }] };

/** The management API of SPEC section 5 and the routing API of section 6. */
export async function modelRoutes(app: FastifyInstance, options: ModelRouteOptions): Promise<void> {
  // Request types come from the route schemas themselves: what is validated is what is typed.
  const typed = app.withTypeProvider<SchemaTypes>();
  const { registry, router, admin } = options;
  // Packages arrive as a raw body, streamed to disk by the handler, or as a multipart file.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser(PACKAGE_TYPES, (_request, payload, done) => done(null, payload));
  await app.register(multipart, {
    limits: { fileSize: options.uploadLimit, files: 1, fields: 10, parts: 20 },
  });

  typed.get(
    '/v1/models',
    {
      schema: {
        summary: 'Every known version with its state, hash, signer, load time and in-flight count',
        tags: ['models'],
        response: { 200: modelsSchema, ...errors },
      },
    },
    async () => ({ default: router.defaultName() ?? null, ...describeModels(registry, options.trust) }),
  );

  if (options.trust) {
    const trust = options.trust;
    const retire = async () => {
      const report = await trust.retire();
      const refused = report.filter((r) => r.refused);
      if (refused.length > 0)
        throw new HotocrError('NO_TRUSTED_VERSION', refused.map((r) => r.refused).join('; '));
      return report;
    };
    typed.post(
      '/v1/trust/reload',
      {
        onRequest: admin,
        schema: {
          summary:
            'Read the trust folder again now (as a change to it or SIGHUP does); ?retire=true then retires untrusted versions',
          tags: ['trust'],
          ...adminDoc,
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: { retire: { type: 'boolean', default: false } },
          },
        },
      },
      async (request) => {
        const reload = await trust.reload('an admin asked (POST /v1/trust/reload)');
        if (!reload.ok && reload.error) throw new HotocrError(reload.error.code, reload.error.message);
        const { retire: andRetire } = request.query;
        return { ...reload, ...(andRetire ? { retired: await retire() } : {}) };
      },
    );
    typed.post(
      '/v1/trust/retire',
      {
        onRequest: admin,
        schema: {
          summary:
            'Retire every version whose signer the trust store no longer trusts: switch each model to its best still-trusted version (409 NO_TRUSTED_VERSION when there is none)',
          tags: ['trust'],
          ...adminDoc,
        },
      },
      async () => ({ retired: await retire() }),
    );
  }

  typed.post(
    '/v1/models',
    {
      onRequest: admin,
      schema: {
        summary: 'Upload a package: verified, loaded, warmed up and activated (or staged)',
        description:
          'The body is the package (application/zip) or a multipart file. It is streamed to disk under the upload limit and goes through exactly the checks of the watched folder.',
        tags: ['models'],
        ...adminDoc,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            activate: { type: 'boolean', default: true, description: 'false stages it as ready' },
            allowDowngrade: {
              type: 'boolean',
              default: false,
              description: 'accept a version lower than one uploaded before',
            },
          },
        },
        response: { 201: versionSchema, 200: versionSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { query } = request;
      const declared = Number(request.headers['content-length']);
      if (declared > options.uploadLimit)
        throw new HotocrError(
          'PACKAGE_TOO_LARGE',
          `The upload (${declared} bytes) is over the ${options.uploadLimit}-byte limit (--upload-limit, HOTOCR_UPLOAD_LIMIT).`,
        );
      const stream = await packageStream(request);
      const path = await saveUpload(stream, options.uploadsDir, options.uploadLimit);
      const known = new Set(registry.versions().map((v) => `${v.name}/${v.version}/${v.sha256}`));
      let v: ModelVersion;
      try {
        v = await registry.submit(path, {
          source: 'upload',
          activate: query.activate,
          allowDowngrade: query.allowDowngrade,
          // Ours alone: once verified, the registry moves it to its packages folder.
          owned: true,
        });
      } finally {
        // What the registry did not take (a refusal, a version it had already).
        await rm(path, { force: true });
      }
      const fresh = !known.has(`${v.name}/${v.version}/${v.sha256}`);
      return reply.status(fresh ? 201 : 200).send(describeVersion(v));
    },
  );

  typed.post(
    '/v1/models/:name/versions/:version/activate',
    {
      onRequest: admin,
      schema: {
        summary: 'Switch to a ready version',
        tags: ['models'],
        ...adminDoc,
        params: versionParams,
        response: { 200: versionSchema, ...errors },
      },
    },
    async (request) => {
      const { name, version } = request.params;
      await registry.activate(name, version);
      return describeVersion(registry.active(name)!);
    },
  );

  typed.post(
    '/v1/models/:name/rollback',
    {
      onRequest: admin,
      schema: {
        summary: 'Back to the previously active version (instant when kept warm, else loaded again)',
        tags: ['models'],
        ...adminDoc,
        params: nameParams,
        response: { 200: versionSchema, ...errors },
      },
    },
    async (request) => {
      const { name } = request.params;
      return describeVersion(await registry.rollback(name));
    },
  );

  typed.delete(
    '/v1/models/:name/versions/:version',
    {
      onRequest: admin,
      schema: {
        summary: 'Unload a version that is not active: it drains, then its sessions are released',
        tags: ['models'],
        ...adminDoc,
        params: versionParams,
        response: { 200: versionSchema, ...errors },
      },
    },
    async (request) => {
      const { name, version } = request.params;
      const v = registry.versions().find((x) => x.name === name && x.version === version);
      await registry.unload(name, version);
      return describeVersion(v!);
    },
  );

  typed.delete(
    '/v1/models/:name',
    {
      onRequest: admin,
      schema: {
        summary:
          'Retire a model: its versions drain and are released, and everything kept of it is forgotten, so the name can be used again',
        tags: ['models'],
        ...adminDoc,
        params: nameParams,
        response: { 200: removedSchema, ...errors },
      },
    },
    async (request) => {
      const { name } = request.params;
      return registry.removeModel(name);
    },
  );

  typed.get(
    '/v1/routing',
    {
      schema: {
        summary: 'How traffic of the default model is split between its versions',
        tags: ['routing'],
        response: { 200: routingSchema, ...errors },
      },
    },
    async () => router.view(),
  );
  typed.get(
    '/v1/models/:name/routing',
    {
      schema: {
        summary: 'How traffic of a model is split between its versions',
        tags: ['routing'],
        params: nameParams,
        response: { 200: routingSchema, ...errors },
      },
    },
    async (request) => router.resolve(request.params.name).view(),
  );

  typed.put(
    '/v1/routing',
    {
      onRequest: admin,
      schema: {
        summary:
          'Split traffic of the default model (or the one the body names) between ready versions by weight, or end the split with {"split": {}}',
        tags: ['routing'],
        ...adminDoc,
        body: routingUpdateSchema,
        response: { 200: routingSchema, ...errors },
      },
    },
    async (request) => router.update(request.body),
  );
  typed.put(
    '/v1/models/:name/routing',
    {
      onRequest: admin,
      schema: {
        summary:
          'Split traffic of a model between its ready versions by weight, or end the split with {"split": {}}',
        tags: ['routing'],
        ...adminDoc,
        params: nameParams,
        body: routingUpdateSchema,
        response: { 200: routingSchema, ...errors },
      },
    },
    async (request) => {
      const { name } = request.params;
      const { body } = request;
      if (body.name !== undefined && body.name !== name)
        throw new HotocrError(
          'REQUEST_INVALID',
          `The body names ${JSON.stringify(body.name)} and the path ${JSON.stringify(name)}; leave "name" out, or make them the same.`,
        );
      return router.update({ ...body, name });
    },
  );
}

async function packageStream(request: FastifyRequest): Promise<Readable> {
  if (request.isMultipart()) {
    return (await multipartFile(request, 'package')).file;
  }
  if (request.body === undefined || request.body === null)
    throw new HotocrError(
      'BODY_MISSING',
      'Send the package as the body (Content-Type application/zip) or as a multipart file.',
    );
  // Any other type fastify parses (JSON) is not a package.
  if (!(request.body instanceof Readable))
    throw new HotocrError(
      'UNSUPPORTED_MEDIA_TYPE',
      `A package is sent as ${PACKAGE_TYPES.join(', ')} or multipart/form-data, not ${request.headers['content-type'] ?? 'without a type'}.`,
    );
  return request.body;
}
