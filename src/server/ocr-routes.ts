import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  bodyKind,
  checkRewritable,
  DEFAULT_DPI,
  DEFAULT_MAX_PAGE_PIXELS,
  DEFAULT_MAX_PAGES,
  type DocumentOptions,
  imagePageCount,
  jpegDataUrl,
  MAX_DPI,
  MIN_DPI,
  openDocument,
  type PageRead,
  parsePageSelection,
  readDocument,
  searchablePdf,
} from '../documents/index.js';
import { DocumentError, HotocrError } from '../errors.js';
import { decodeImage, type OcrLine } from '../ocr/index.js';
import type { Router, TrafficStats } from '../routing/index.js';
import type { Admission } from './admission.js';
import type { Metrics } from './metrics.js';
import { multipartError, multipartFile } from './multipart-file.js';
import { documentResultSchema, errors, nameParams, ocrResultSchema, type SchemaTypes } from './schemas.js';

export const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/webp', 'image/tiff'];
export const DOCUMENT_TYPES = ['application/pdf'];
/** What POST /v1/ocr takes as a raw body: images and PDFs. */
export const OCR_BODY_TYPES = [...IMAGE_TYPES, ...DOCUMENT_TYPES];

/** Limits of documents (PDFs and multi-page TIFFs). */
export interface DocumentLimits {
  /** Most pages read per request (default 50). */
  readonly maxPages?: number;
  /** Most pixels of one rendered page (default 36 megapixels). */
  readonly maxPagePixels?: number;
  /** Resolution PDF pages are rendered at unless ?dpi= says otherwise (default 150). */
  readonly dpi?: number;
}

export interface OcrRouteOptions {
  readonly router: Router;
  readonly admission: Admission;
  readonly metrics: Metrics;
  readonly stats: TrafficStats;
  /** Largest image accepted, raw or as a multipart file. */
  readonly bodyLimit: number;
  /** From arrival to answer, waiting included. */
  readonly requestTimeoutMs: number;
  readonly documents?: DocumentLimits;
}

interface OcrRequestState {
  /** The model the request goes to, told before its body is read. */
  model: string;
  started: number;
  signal: AbortSignal;
  /** Answers 408 if the body is still incomplete at the deadline; cleared once the body is read. */
  bodyTimer: NodeJS.Timeout;
  /** Pages of a document to read; unset for an image. */
  pages?: number;
}

const state = new WeakMap<FastifyRequest, OcrRequestState>();
const round = (n: number) => Math.round(n * 10) / 10;

/**
 * POST /v1/ocr (the default model) and POST /v1/models/{name}/ocr, in a scope of their own:
 * they parse only image bodies and multipart. The model is told and the request admitted
 * against that model's places (or refused: MODEL_NOT_FOUND, MODEL_REQUIRED, NOT_READY,
 * OVERLOADED) before its body is read; a client that goes away stops its work at the next
 * stage and never takes a lease if it was still waiting.
 */
export async function ocrRoutes(app: FastifyInstance, options: OcrRouteOptions): Promise<void> {
  const { router, admission, metrics } = options;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(OCR_BODY_TYPES, { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  await app.register(multipart, {
    limits: { fileSize: options.bodyLimit, files: 1, fields: 10, parts: 20, fieldSize: 1024 },
  });

  /** Admits a request to the model it goes to (`named` in its path, or else), before its body is read. */
  async function admit(
    request: FastifyRequest,
    reply: FastifyReply,
    named: string | undefined,
  ): Promise<void> {
    const model = modelOf(request, named);
    const release = admission.admit(model);
    const controller = new AbortController();
    // The deadline covers the body too: a client that sends it a byte at a time must not keep
    // its admitted place. Past the deadline with the body incomplete: 408, and the connection closes.
    const bodyTimer = setTimeout(() => {
      if (request.raw.complete || reply.sent) return;
      void reply
        .code(408)
        .header('Connection', 'close')
        .send({
          error: {
            code: 'BODY_TIMEOUT',
            message: `The request body did not arrive within ${options.requestTimeoutMs} ms.`,
          },
        });
    }, options.requestTimeoutMs);
    reply.raw.once('close', () => {
      clearTimeout(bodyTimer);
      release();
      if (!reply.raw.writableFinished) controller.abort();
    });
    state.set(request, { model, started: performance.now(), signal: controller.signal, bodyTimer });
  }
  app.addHook('onResponse', async (request, reply) => {
    const header = reply.getHeader('x-model-version');
    const version = typeof header === 'string' ? header : undefined;
    const model = state.get(request)?.model ?? '';
    metrics.ocrRequest(model, version, reply.statusCode, reply.elapsedTime / 1000);
    // A document counts as its time per page: the canary guard compares versions' latencies,
    // and one 50-page document must not weigh as a slow request.
    const pages = state.get(request)?.pages ?? 1;
    if (version) options.stats.record(version, reply.elapsedTime / pages, reply.statusCode >= 500);
  });

  /**
   * The model a request goes to: the one its path names, else the one its pin names, else
   * the default model. Throws when there is none to go to.
   */
  function modelOf(request: FastifyRequest, named: string | undefined): string {
    const pin = header(request, 'x-model-version');
    const pinned = pin?.includes('/') ? pin.slice(0, pin.indexOf('/')) : undefined;
    const model = router.resolve(named ?? pinned);
    // Nothing to serve and no pin (which may name a staged version): refused before the body is read.
    if (!pin && model.view().active === null)
      throw new HotocrError('NOT_READY', `No version of ${model.name} is active yet; retry shortly.`);
    return model.name;
  }

  const documentLimits = {
    maxPages: options.documents?.maxPages ?? DEFAULT_MAX_PAGES,
    maxPagePixels: options.documents?.maxPagePixels ?? DEFAULT_MAX_PAGE_PIXELS,
    dpi: options.documents?.dpi ?? DEFAULT_DPI,
  };

  /** `query` as the route's querystring schema validated it. */
  async function read(
    request: FastifyRequest,
    reply: FastifyReply,
    query: { pages?: string; dpi?: number; pageImages?: boolean },
  ) {
    const { model: name, started, signal, bodyTimer } = state.get(request)!;
    const { bytes, type } = await bodyOf(request, options.bodyLimit);
    // The body is in: from here the deadline is the read's (503 TIMEOUT), not the body's.
    clearTimeout(bodyTimer);
    const deadline = started + options.requestTimeoutMs;
    const wantsPdf = accepts(request, 'application/pdf');
    const opened = performance.now();
    const password = header(request, 'x-document-password');
    const document = await beforeDeadline(
      documentOf(bytes, type, query, wantsPdf, {
        ...documentLimits,
        deadline,
        // The bytes the client sent (UTF-8 for a modern PDF's password, Latin-1 for an older
        // one's), in a buffer of their own: not a slice of a pool that holds other bytes.
        ...(password ? { password: new Uint8Array(Buffer.from(password, 'latin1')) } : {}),
      }),
      deadline,
    );
    if (document)
      return readPages(request, reply, bytes, document, {
        wantsPdf,
        pageImages: query.pageImages === true,
        opening: performance.now() - opened,
      });
    const work = admission.run(
      async () => {
        const waited = performance.now() - started;
        const lease = router.lease({
          userId: header(request, 'x-user-id'),
          pin: header(request, 'x-model-version'),
          model: name,
        });
        if (!lease) throw new HotocrError('NOT_READY', `No version of ${name} is active yet; retry shortly.`);
        try {
          const { model, version: served } = lease;
          void reply.header('X-Model-Version', `${served.name}/${served.version}`);
          const t0 = performance.now();
          const image = await decodeImage(bytes);
          const decode = performance.now() - t0;
          const result = await model.read(image, { signal });
          return { served, result, waited, decode };
        } finally {
          lease.release();
        }
      },
      deadline,
      signal,
      name,
    );
    const { served, result, waited, decode } = await beforeDeadline(work, deadline);
    return {
      model: { name: served.name, version: served.version },
      lines: linesOf(result.lines),
      timings: {
        queue: round(waited),
        decode: round(decode),
        det: round(result.timings.det),
        cls: round(result.timings.cls),
        rec: round(result.timings.rec),
        inference: round(result.timings.inference),
        total: round(performance.now() - started),
      },
    };
  }

  /**
   * Reads every selected page of a document with one lease, so one model version reads them
   * all; the pages are rendered and read one after another (the next rendered while one is
   * read), and the answer is JSON per page, or the document with a text layer.
   */
  async function readPages(
    request: FastifyRequest,
    reply: FastifyReply,
    bytes: Buffer,
    checked: CheckedDocument,
    { wantsPdf, pageImages, opening }: { wantsPdf: boolean; pageImages: boolean; opening: number },
  ) {
    const requestState = state.get(request)!;
    const { model: name, started, signal } = requestState;
    requestState.pages = Math.max(1, checked.pages);
    const deadline = started + options.requestTimeoutMs;
    const work = admission.run(
      async () => {
        const waited = performance.now() - started;
        const lease = router.lease({
          userId: header(request, 'x-user-id'),
          pin: header(request, 'x-model-version'),
          model: name,
        });
        if (!lease) throw new HotocrError('NOT_READY', `No version of ${name} is active yet; retry shortly.`);
        // Opened again now that it runs: waiting, it held no copy of itself in PDFium's memory.
        const document = await openDocument(bytes, checked.options).catch((error: unknown) => {
          lease.release();
          throw error;
        });
        try {
          const { model, version: served } = lease;
          void reply.header('X-Model-Version', `${served.name}/${served.version}`);
          // Each page's pixels are dropped once it is read; only its JPEG is kept, when asked for.
          const pages: (Omit<PageRead, 'image'> & { jpeg?: string })[] = [];
          await readDocument(
            document,
            (image) => model.read(image, { signal }),
            async ({ image, ...page }) => {
              metrics.documentPage(served.name, `${served.name}/${served.version}`, document.kind);
              pages.push(pageImages && !wantsPdf ? { ...page, jpeg: await jpegDataUrl(image) } : page);
            },
            { signal, deadline },
          );
          const pdf = wantsPdf
            ? await searchablePdf(
                document,
                pages.map((p) => ({ page: p.page, width: p.width, height: p.height, lines: p.result.lines })),
                { deadline, signal },
              )
            : undefined;
          return { served, pages, waited, pdf, pageCount: document.pageCount, dpi: document.dpi };
        } finally {
          document.close();
          lease.release();
        }
      },
      deadline,
      signal,
      name,
    );
    const { served, pages, waited, pdf, pageCount, dpi } = await beforeDeadline(work, deadline);
    if (pdf) {
      return reply
        .type('application/pdf')
        .header('Content-Disposition', 'inline; filename="searchable.pdf"')
        .send(Buffer.from(pdf.buffer, pdf.byteOffset, pdf.byteLength));
    }
    const sum = (key: 'det' | 'cls' | 'rec' | 'inference') =>
      round(pages.reduce((total, p) => total + p.result.timings[key], 0));
    return {
      model: { name: served.name, version: served.version },
      pageCount,
      dpi,
      pages: pages.map((p) => ({
        page: p.page,
        width: p.width,
        height: p.height,
        lines: linesOf(p.result.lines),
        ...(p.jpeg ? { image: p.jpeg } : {}),
        timings: {
          render: round(p.render),
          det: round(p.result.timings.det),
          cls: round(p.result.timings.cls),
          rec: round(p.result.timings.rec),
          inference: round(p.result.timings.inference),
        },
      })),
      timings: {
        queue: round(waited),
        decode: round(opening),
        render: round(pages.reduce((total, p) => total + p.render, 0)),
        det: sum('det'),
        cls: sum('cls'),
        rec: sum('rec'),
        inference: sum('inference'),
        total: round(performance.now() - started),
      },
    };
  }

  const headers = {
    type: 'object',
    properties: {
      'x-user-id': { type: 'string', maxLength: 256 },
      'x-model-version': { type: 'string', maxLength: 256 },
      'x-document-password': { type: 'string', maxLength: 1024 },
    },
  } as const;
  const response = {
    200: {
      description:
        'An image: its lines, the version that read them (also in X-Model-Version) and timings. A document (a PDF, a multi-page TIFF): the lines of each page read. With Accept: application/pdf, the document as a PDF with an invisible text layer.',
      anyOf: [ocrResultSchema, documentResultSchema],
    },
    ...errors,
  };
  const querystring = {
    type: 'object',
    properties: {
      pages: {
        type: 'string',
        maxLength: 200,
        description: 'Pages of a document to read, numbered from 1: 1-3,7 or 5- (default all)',
      },
      dpi: {
        type: 'integer',
        minimum: MIN_DPI,
        maximum: MAX_DPI,
        description: `Resolution PDF pages are rendered at (default ${documentLimits.dpi})`,
      },
      pageImages: {
        type: 'boolean',
        description:
          'With a document: each page as read, a JPEG data: URL in the answer (for showing the boxes)',
      },
    },
  } as const;
  const body =
    'The body is the image (image/png, image/jpeg, image/webp, image/tiff), a document (application/pdf, a multi-page image/tiff) or either as a multipart/form-data file. A document is answered page by page, every page read by the same version; ?pages= selects pages, ?dpi= the resolution PDF pages are rendered at; Accept: application/pdf answers the document as a searchable PDF. X-Document-Password opens a PDF that needs a password. X-User-Id keeps one user on one version during a split; X-Model-Version (name/version) pins a version of the model when its pinning is allowed.';
  // Request types come from the route schemas: the named route's `name` is typed by nameParams.
  const typed = app.withTypeProvider<SchemaTypes>();
  typed.post(
    '/v1/ocr',
    {
      onRequest: (request, reply) => admit(request, reply, undefined),
      schema: {
        summary: 'Read the text in an image with the default model',
        description: `${body} The default model is --default-model, else the only model with an active version (400 MODEL_REQUIRED when several are and none is the default).`,
        tags: ['ocr'],
        headers,
        querystring,
        response,
      },
    },
    (request, reply) => read(request, reply, request.query),
  );
  typed.post(
    '/v1/models/:name/ocr',
    {
      onRequest: (request, reply) => admit(request, reply, request.params.name),
      schema: {
        summary: 'Read the text in an image with the model named',
        description: `${body} 404 MODEL_NOT_FOUND for a name the server does not know, 503 NOT_READY for one with no active version.`,
        tags: ['ocr'],
        params: nameParams,
        headers,
        querystring,
        response,
      },
    },
    (request, reply) => read(request, reply, request.query),
  );
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' ? value : undefined;
}

/** The bytes of a raw or multipart body, and the type it was sent as. */
async function bodyOf(request: FastifyRequest, limit: number): Promise<{ bytes: Buffer; type: string }> {
  if (request.isMultipart()) {
    const part = await multipartFile(request, 'image');
    if (!OCR_BODY_TYPES.includes(part.mimetype) && part.mimetype !== 'application/octet-stream') {
      part.file.resume();
      throw new HotocrError(
        'UNSUPPORTED_MEDIA_TYPE',
        `The file is ${part.mimetype}; send image/png, image/jpeg, image/webp, image/tiff or application/pdf.`,
      );
    }
    const bytes = await part.toBuffer().catch((error: unknown) => {
      throw multipartError(error);
    });
    if (part.file.truncated)
      throw new HotocrError('BODY_TOO_LARGE', `The file is over the ${limit}-byte limit.`);
    if (bytes.length > 0) return { bytes, type: part.mimetype };
  } else if (Buffer.isBuffer(request.body) && request.body.length > 0)
    return { bytes: request.body, type: request.headers['content-type']?.split(';')[0]?.trim() ?? '' };
  throw new HotocrError(
    'BODY_MISSING',
    'Send the image or PDF bytes as the request body (Content-Type image/png, image/jpeg, image/webp, image/tiff or application/pdf) or as a multipart file.',
  );
}

/** A document checked against the limits, and how to open it again to read it. */
interface CheckedDocument {
  readonly options: DocumentOptions;
  /** Pages to read. */
  readonly pages: number;
}

/**
 * The document a body holds, opened and checked against the limits, then closed; undefined
 * for a single image, which keeps the single-image answer. A body is a document when it is a PDF (sent as
 * one or found to be one), a TIFF of several pages, or anything whose answer is to be a PDF
 * or whose pages are selected.
 */
async function documentOf(
  bytes: Buffer,
  type: string,
  query: { pages?: string; dpi?: number },
  wantsPdf: boolean,
  limits: { maxPages: number; maxPagePixels: number; dpi: number; deadline: number; password?: Uint8Array },
): Promise<CheckedDocument | undefined> {
  const kind = bodyKind(bytes);
  if (type === 'application/pdf' && kind !== 'pdf')
    throw new DocumentError(
      'DOCUMENT_INVALID',
      'The body is sent as application/pdf but is not a PDF (no %PDF- header).',
    );
  const selected = query.pages !== undefined;
  if (kind !== 'pdf' && !wantsPdf && !selected) {
    // A TIFF of one page, or one whose header cannot be read, is an image as before.
    if (kind !== 'tiff') return undefined;
    if ((await imagePageCount(bytes)) <= 1) return undefined;
  }
  const options: DocumentOptions = {
    dpi: query.dpi ?? limits.dpi,
    maxPages: limits.maxPages,
    maxPagePixels: limits.maxPagePixels,
    // PDFium is not let run past the request's deadline (a page built to keep it busy stops it).
    deadline: limits.deadline,
    ...(limits.password ? { password: limits.password } : {}),
    ...(selected ? { pages: parsePageSelection(query.pages!) } : {}),
  };
  // Checked now, so that a refusal costs no wait for a slot; closed at once, so that a
  // document waiting in the queue holds no copy of itself in PDFium's memory.
  const checked = await openDocument(bytes, options);
  try {
    if (wantsPdf) checkRewritable(checked);
  } finally {
    checked.close();
  }
  return { options, pages: checked.pages.length };
}

/** Whether the Accept header names `type` (a client that wants JSON leaves it out). */
function accepts(request: FastifyRequest, type: string): boolean {
  const accept = request.headers.accept;
  return typeof accept === 'string' && accept.split(',').some((t) => t.split(';')[0]?.trim() === type);
}

function linesOf(lines: readonly OcrLine[]) {
  return lines.map((l) => ({ text: l.text, score: Math.round(l.score * 1e4) / 1e4, box: l.box }));
}

/** The work's result, or TIMEOUT at the deadline (the work still ends on its own, and frees its slot). */
function beforeDeadline<T>(work: Promise<T>, deadline: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new HotocrError(
            'TIMEOUT',
            'The request took longer than the request timeout (--request-timeout-ms); retry later.',
          ),
        ),
      Math.max(0, deadline - performance.now()),
    );
  });
  work.catch(() => {}); // settled below or abandoned at the deadline
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
