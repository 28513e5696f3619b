/**
 * JSON schemas of the HTTP API. Fastify serialises answers with them (fields not listed are
 * not sent) and /openapi.json is generated from them, so they are the API's contract.
 */
import type { FastifyTypeProvider } from 'fastify';
import type { FromSchema, JSONSchema } from 'json-schema-to-ts';

/**
 * Route types from these schemas: a route's params, query and body are typed as the schema
 * that validates them says, so no handler casts what it is sent. Answers are not typed from
 * the schemas (they only select the fields sent), so a handler returns its own types.
 */
export interface SchemaTypes extends FastifyTypeProvider {
  validator: this['schema'] extends JSONSchema ? FromSchema<this['schema']> : unknown;
  serializer: unknown;
}

const error = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
  },
} as const;

/** Every route can answer with an error of this shape. */
export const errors = {
  '4xx': { description: 'Refused: the code says why', ...error },
  '5xx': { description: 'Could not serve now (503: retry after Retry-After seconds)', ...error },
} as const;

const modelRef = {
  type: 'object',
  required: ['name', 'version'],
  properties: { name: { type: 'string' }, version: { type: 'string' } },
} as const;

export const versionSchema = {
  type: 'object',
  required: ['name', 'version', 'state', 'sha256', 'source', 'signer', 'loadedAt', 'inflight'],
  properties: {
    name: { type: 'string' },
    version: { type: 'string' },
    state: { type: 'string', enum: ['loading', 'ready', 'active', 'draining', 'released', 'failed'] },
    sha256: { type: 'string', description: 'SHA-256 of the package file' },
    source: { type: 'string', description: 'bundled, cli, folder, upload, restore or rollback' },
    signer: {
      type: 'object',
      description:
        'Who signed it, by kind: key (fingerprint, source) or certificate (subject, root) for a hotocr package; oms-key, oms-certificate or oms-sigstore (identity, issuer) for one signed with OpenSSF Model Signing',
      additionalProperties: true,
    },
    loadedAt: { type: ['string', 'null'] },
    loader: {
      type: 'object',
      description:
        'The loader that runs it (name) and what that loader reports (runtime, runtimeVersion, backend...)',
      required: ['name'],
      additionalProperties: true,
    },
    expires: { type: 'string' },
    inflight: { type: 'integer', description: 'Requests running on it now' },
    memory: {
      type: 'object',
      description:
        'What loading it cost: loadBytes, how much the process grew from the start of its load to the end of its warm-up; sharedSessions, graph sessions it shares with another loaded version (counted with that one)',
      properties: { loadBytes: { type: 'integer' }, sharedSessions: { type: 'integer' } },
    },
    failure: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
  },
} as const;

export const modelsSchema = {
  type: 'object',
  required: ['models'],
  properties: {
    default: {
      type: ['string', 'null'],
      description:
        'The model POST /v1/ocr goes to: --default-model, else the only model with an active version',
    },
    memory: {
      type: 'object',
      description:
        'The whole process now, in bytes: resident set, V8 heap used, external and ArrayBuffer memory',
      properties: {
        rss: { type: 'integer' },
        heapUsed: { type: 'integer' },
        external: { type: 'integer' },
        arrayBuffers: { type: 'integer' },
      },
    },
    trust: {
      type: 'array',
      description:
        'Every trusted key and pinned root, each deny-list line, and each Sigstore identity trusted to sign keyless OMS packages, with when trusting it ends',
      items: {
        type: 'object',
        required: ['kind', 'fingerprint', 'source'],
        properties: {
          kind: { type: 'string', enum: ['key', 'root', 'deny', 'identity'] },
          fingerprint: { type: 'string' },
          source: { type: 'string' },
          subject: { type: 'string' },
          notAfter: { type: 'string' },
          identity: { type: 'string', description: "kind identity: the signing certificate's identity" },
          issuer: { type: 'string', description: 'kind identity: its OIDC issuer' },
        },
      },
    },
    models: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'active', 'versions'],
        properties: {
          name: { type: 'string' },
          active: { type: ['string', 'null'] },
          versions: { type: 'array', items: versionSchema },
        },
      },
    },
  },
} as const;

const ocrLines = {
  type: 'array',
  description: 'In reading order',
  items: {
    type: 'object',
    required: ['text', 'score', 'box'],
    properties: {
      text: { type: 'string' },
      score: { type: 'number' },
      box: {
        type: 'array',
        description: 'Four corners [x, y], clockwise from the top left, in image pixels',
        items: { type: 'array', items: { type: 'number' } },
      },
    },
  },
} as const;

const timingProperties = {
  queue: { type: 'number' },
  decode: { type: 'number' },
  render: { type: 'number' },
  det: { type: 'number' },
  cls: { type: 'number' },
  rec: { type: 'number' },
  inference: { type: 'number' },
  total: { type: 'number' },
} as const;

/** The answer for a document (PDF or multi-page TIFF): the lines of each page read, in page order. */
export const documentResultSchema = {
  type: 'object',
  required: ['model', 'pages', 'timings'],
  properties: {
    model: modelRef,
    pageCount: { type: 'integer', description: 'Pages in the document (all of them, read or not)' },
    dpi: {
      type: 'number',
      description: 'Resolution the PDF pages were rendered at (an image its own, else 72)',
    },
    pages: {
      type: 'array',
      items: {
        type: 'object',
        required: ['page', 'width', 'height', 'lines'],
        properties: {
          page: { type: 'integer', description: 'From 1' },
          width: { type: 'integer', description: 'Of the rendered page, in pixels: the boxes are in these' },
          height: { type: 'integer' },
          lines: ocrLines,
          image: { type: 'string', description: 'With ?pageImages=true: the page as read, a JPEG data: URL' },
          timings: { type: 'object', description: 'Milliseconds', properties: timingProperties },
        },
      },
    },
    timings: {
      type: 'object',
      description: 'Milliseconds, all pages together; decode is opening and checking the document',
      properties: timingProperties,
    },
  },
} as const;

export const ocrResultSchema = {
  type: 'object',
  required: ['model', 'lines', 'timings'],
  properties: {
    model: modelRef,
    lines: ocrLines,
    timings: {
      type: 'object',
      description: 'Milliseconds',
      properties: {
        queue: { type: 'number' },
        decode: { type: 'number' },
        det: { type: 'number' },
        cls: { type: 'number' },
        rec: { type: 'number' },
        inference: { type: 'number' },
        total: { type: 'number' },
      },
    },
  },
} as const;

const split = {
  type: 'array',
  items: {
    type: 'object',
    required: ['version', 'weight'],
    properties: { version: { type: 'string' }, weight: { type: 'integer' } },
  },
} as const;

export const routingSchema = {
  type: 'object',
  required: ['name', 'active', 'split', 'allowPinning', 'updatedAt'],
  properties: {
    name: { type: ['string', 'null'] },
    active: { type: ['string', 'null'] },
    split,
    allowPinning: { type: 'boolean' },
    updatedAt: { type: 'string' },
  },
} as const;

export const routingUpdateSchema = {
  type: 'object',
  required: ['split'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', description: 'The model (default: the default model)' },
    split: {
      type: 'object',
      description: 'Version to percent, in range order; whole numbers adding up to 100; {} ends the split',
      additionalProperties: { type: 'integer', minimum: 0, maximum: 100 },
    },
    allowPinning: { type: 'boolean' },
  },
} as const;

export const versionParams = {
  type: 'object',
  required: ['name', 'version'],
  properties: {
    name: { type: 'string', maxLength: 128 },
    version: { type: 'string', maxLength: 128 },
  },
} as const;

export const removedSchema = {
  type: 'object',
  required: ['name', 'versions'],
  properties: {
    name: { type: 'string' },
    versions: { type: 'array', items: { type: 'string' }, description: 'The versions released' },
  },
} as const;

export const nameParams = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', maxLength: 128 } },
} as const;

export const statusSchema = {
  type: 'object',
  required: ['status'],
  properties: {
    status: { type: 'string' },
    model: modelRef,
    models: { type: 'array', description: 'Every model, with --ready-all-models', items: modelRef },
  },
} as const;

const nullableNumber = { type: ['number', 'null'] } as const;

export const statsSchema = {
  type: 'object',
  required: ['now', 'versions'],
  properties: {
    now: { type: 'number' },
    versions: {
      type: 'array',
      items: {
        type: 'object',
        required: ['version', 'perSecond', 'p99', 'series'],
        properties: {
          version: { type: 'string', description: 'name/version' },
          perSecond: { type: 'number', description: 'over the last 10 s' },
          p99: { ...nullableNumber, description: 'ms, over the last 60 s' },
          series: {
            type: 'array',
            description: '5-second periods over the last 5 minutes (periods without requests left out)',
            items: {
              type: 'object',
              properties: {
                t: { type: 'number' },
                count: { type: 'integer' },
                errors: { type: 'integer' },
                p50: nullableNumber,
                p99: nullableNumber,
              },
            },
          },
        },
      },
    },
  },
} as const;
