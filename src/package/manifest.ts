import semver from 'semver';
import { z } from 'zod';
import { messageOf, PackageRejectedError } from '../errors.js';

export const MANIFEST_FILE = 'config.json';
export const FORMAT = 'hotocr/v1';

const entryName = z
  .string()
  .regex(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/, 'must be the bare name of a file in the package');
const positive = z.number().positive().finite();
const unit = z.number().min(0).max(1);

/** Detection (DB) parameters; defaults are PaddleOCR's `tools/infer` values. */
const detSchema = z.strictObject({
  limitSideLen: z.number().int().min(32).max(8192).optional(),
  limitType: z.enum(['max', 'min']).optional(),
  thresh: unit.optional(),
  boxThresh: unit.optional(),
  unclipRatio: positive.optional(),
  maxCandidates: z.number().int().min(1).max(10000).optional(),
  minSize: z.number().min(0).optional(),
  rescale: z.boolean().optional(),
  maxSideLen: z.number().int().min(32).max(8192).optional(),
  pad: z.boolean().optional(),
  order: z.enum(['top-left', 'lines']).optional(),
});

const clsSchema = z.strictObject({
  enabled: z.boolean().optional(),
  threshold: unit.optional(),
  imageHeight: z.number().int().min(8).max(512).optional(),
  imageWidth: z.number().int().min(8).max(4096).optional(),
  batchSize: z.number().int().min(1).max(256).optional(),
  windows: z.boolean().optional(),
  confirmBelow: unit.optional(),
});

const recSchema = z.strictObject({
  imageHeight: z.number().int().min(8).max(512).optional(),
  imageWidth: z.number().int().min(8).max(8192).optional(),
  maxImageWidth: z.number().int().min(8).max(8192).optional(),
  batchSize: z.number().int().min(1).max(256).optional(),
  dropScore: unit.optional(),
  useSpaceChar: z.boolean().optional(),
  width: z.enum(['padded', 'own']).optional(),
  room: z.number().min(0).max(1).optional(),
  enlarge: z.enum(['bilinear', 'bicubic']).optional(),
  retryBelow: unit.optional(),
  trim: z.boolean().optional(),
});

/** A model name: what `config.json` may call a model, and what a followed repository may stand for. */
export const MODEL_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

const manifestSchema = z
  .strictObject({
    format: z.literal(FORMAT),
    name: z.string().regex(MODEL_NAME, 'must be lowercase letters, digits, ".", "_" or "-", at most 64'),
    version: z.string().refine((v) => semver.valid(v) === v, 'must be a semantic version such as 2.1.0'),
    task: z.enum(['ocr', 'rec']),
    description: z.string().max(1000).optional(),
    graphs: z.strictObject({ det: entryName.optional(), rec: entryName, cls: entryName.optional() }),
    dict: entryName.optional(),
    runtime: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'must name a loader, e.g. onnxruntime-node')
      .optional(),
    det: detSchema.optional(),
    cls: clsSchema.optional(),
    rec: recSchema.optional(),
    warmup: z.strictObject({ expect: z.string().max(1000).optional() }).optional(),
    created: z.iso.datetime({ offset: true }).optional(),
    expires: z.iso.datetime({ offset: true }).optional(),
  })
  .superRefine((m, ctx) => {
    if (m.task === 'ocr' && !m.graphs.det) {
      ctx.addIssue({
        code: 'custom',
        path: ['graphs', 'det'],
        message: 'task "ocr" needs a detection graph',
      });
    }
    if (m.task === 'rec' && (m.graphs.det || m.graphs.cls)) {
      ctx.addIssue({
        code: 'custom',
        path: ['graphs'],
        message: 'task "rec" takes a recognition graph only',
      });
    }
    if (!m.dict)
      ctx.addIssue({ code: 'custom', path: ['dict'], message: 'recognition needs a dictionary file' });
    if (m.created && m.expires && Date.parse(m.expires) <= Date.parse(m.created)) {
      ctx.addIssue({ code: 'custom', path: ['expires'], message: 'must be after "created"' });
    }
  });

export type Manifest = z.infer<typeof manifestSchema>;

/** Parses and validates `config.json`; unknown keys are refused, not ignored. */
export function parseManifest(bytes: Buffer): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new PackageRejectedError(
      'CONFIG_INVALID',
      `${MANIFEST_FILE} is not valid JSON (${messageOf(cause)}).`,
      {
        cause,
      },
    );
  }
  const result = manifestSchema.safeParse(json);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const at = issue.path.length ? issue.path.join('.') : '(top level)';
      return `${at}: ${issue.message}`;
    });
    throw new PackageRejectedError('CONFIG_INVALID', `${MANIFEST_FILE} is invalid: ${problems.join('; ')}.`, {
      details: { problems },
    });
  }
  return result.data;
}

/** Every file the manifest names (graphs and dictionary). */
export function referencedFiles(manifest: Manifest): string[] {
  const files = [manifest.graphs.det, manifest.graphs.rec, manifest.graphs.cls, manifest.dict];
  return files.filter((f): f is string => f !== undefined);
}
