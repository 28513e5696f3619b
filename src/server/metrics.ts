import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry as PromRegistry } from 'prom-client';
import { pdfRendererStats } from '../documents/index.js';
import type { InferenceThreads } from '../loaders/index.js';
import type { ModelVersion, Registry } from '../registry/index.js';
import type { RegistrySourceStatus } from '../sources/registry-source.js';
import { signerCertificate, type TrustEntry } from '../verify/index.js';
import type { Admission } from './admission.js';

/** What the metrics read besides the registry: the trust in use, and the registry followed. */
export interface MetricsSources {
  /** Every trusted key and pinned root, with when trusting it ends. */
  readonly trust?: () => readonly TrustEntry[];
  /** The followed repositories' statuses, when the server follows any. */
  readonly registrySources?: () => readonly RegistrySourceStatus[];
  /** The process's inference threads: optimized graphs, shared sessions, threads lost and replaced. */
  readonly threads?: InferenceThreads;
}

/**
 * The Prometheus metrics of SPEC section 7, on a registry of their own (so two servers in one
 * process never share counters), plus the process defaults: GC pauses, event-loop lag, memory.
 */
export class Metrics {
  readonly prom = new PromRegistry();
  readonly #requestSeconds: Histogram<'name' | 'version'>;
  readonly #requests: Counter<'name' | 'version' | 'status'>;
  readonly #canaryRollbacks: Counter<'name' | 'version' | 'cause'>;
  readonly #documentPages: Counter<'name' | 'version' | 'kind'>;

  constructor(registry: Registry, admission: Admission, sources: MetricsSources = {}) {
    const prom = this.prom;
    collectDefaultMetrics({ register: prom, gcDurationBuckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5] });

    const stageSeconds = new Histogram({
      name: 'hotocr_package_load_seconds',
      help: 'Time spent on each stage of taking a package in: verify, load (graphs), warmup, switch.',
      labelNames: ['name', 'stage'],
      buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [prom],
    });
    const rejections = new Counter({
      name: 'hotocr_package_rejections_total',
      help: 'Packages refused (verification) or failed (load, warm-up), by reason code.',
      labelNames: ['reason'],
      registers: [prom],
    });
    const swaps = new Counter({
      name: 'hotocr_model_swaps_total',
      help: 'Times a model switched from one active version to another.',
      labelNames: ['name'],
      registers: [prom],
    });
    const releases = new Counter({
      name: 'hotocr_model_releases_total',
      help: 'Versions whose sessions were released after draining.',
      labelNames: ['name'],
      registers: [prom],
    });
    const legacy = new Counter({
      name: 'hotocr_legacy_packages_total',
      help: 'Seed-style packages (signature over model.onnx alone) accepted under --allow-legacy-signatures or refused.',
      labelNames: ['outcome'],
      registers: [prom],
    });
    for (const outcome of ['accepted', 'refused']) legacy.inc({ outcome }, 0);
    registry.on((event) => {
      switch (event.type) {
        case 'verified':
          stageSeconds.observe({ name: event.name, stage: 'verify' }, event.verifyMs / 1000);
          if (event.legacy) legacy.inc({ outcome: 'accepted' });
          break;
        case 'ready':
          stageSeconds.observe({ name: event.name, stage: 'load' }, event.loadMs / 1000);
          stageSeconds.observe({ name: event.name, stage: 'warmup' }, event.warmupMs / 1000);
          break;
        case 'activated':
          stageSeconds.observe({ name: event.name, stage: 'switch' }, event.switchMs / 1000);
          if (event.previous !== undefined) swaps.inc({ name: event.name });
          break;
        case 'rejected':
          rejections.inc({ reason: event.code });
          if (event.legacy) legacy.inc({ outcome: 'refused' });
          break;
        case 'failed':
          rejections.inc({ reason: event.code });
          break;
        case 'released':
          releases.inc({ name: event.name });
          break;
      }
    });

    const versionsNow = () => registry.versions();
    /** Admission per model, every loaded model included (0 when idle), so a sum is never empty. */
    const perModel = () => {
      const held = admission.perModel();
      const idle = [...new Set(versionsNow().map((v) => v.name))].filter(
        (n) => !held.some((m) => m.model === n),
      );
      return [...held, ...idle.map((model) => ({ model, queued: 0, running: 0 }))];
    };
    new Gauge({
      name: 'hotocr_active_model_info',
      help: 'The active version of each model (value 1).',
      labelNames: ['name', 'version', 'sha256'],
      registers: [prom],
      collect() {
        this.reset();
        for (const v of versionsNow())
          if (v.state === 'active') this.set({ name: v.name, version: v.version, sha256: v.sha256 }, 1);
      },
    });
    /** A gauge with a value for each loaded version (loading and released ones have none). */
    const perLoadedVersion = (name: string, help: string, value: (v: ModelVersion) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ['name', 'version'],
        registers: [prom],
        collect() {
          this.reset();
          for (const v of versionsNow()) {
            if (v.state !== 'active' && v.state !== 'ready' && v.state !== 'draining') continue;
            const n = value(v);
            if (n !== undefined) this.set({ name: v.name, version: v.version }, n);
          }
        },
      });
    perLoadedVersion('hotocr_model_inflight', 'Requests running on each loaded version.', (v) => v.inflight);
    perLoadedVersion(
      'hotocr_model_memory_bytes',
      'How much the process grew (resident set) while each loaded version loaded and warmed up; sessions shared with another version count with that one.',
      (v) => v.memory?.loadBytes,
    );
    perLoadedVersion(
      'hotocr_model_shared_sessions',
      'Graph sessions each loaded version shares with another loaded version (opened once, counted with it).',
      (v) => v.memory?.sharedSessions,
    );
    new Gauge({
      name: 'hotocr_model_versions',
      help: 'Versions the server knows, by model and state.',
      labelNames: ['name', 'state'],
      registers: [prom],
      collect() {
        this.reset();
        const all = versionsNow();
        for (const name of new Set(all.map((v) => v.name)))
          for (const state of ['loading', 'ready', 'active', 'draining', 'released', 'failed'])
            this.set({ name, state }, all.filter((v) => v.name === name && v.state === state).length);
      },
    });
    new Gauge({
      name: 'hotocr_package_expiry_timestamp_seconds',
      help: 'When each loaded version stops being accepted (config.json "expires"); alert before it.',
      labelNames: ['name', 'version'],
      registers: [prom],
      collect() {
        this.reset();
        for (const v of versionsNow())
          if (v.manifest.expires && (v.state === 'active' || v.state === 'ready'))
            this.set({ name: v.name, version: v.version }, Date.parse(v.manifest.expires) / 1000);
      },
    });
    new Gauge({
      name: 'hotocr_signer_certificate_expiry_timestamp_seconds',
      help: 'When the signer certificate of each active or ready version stops being valid (its notAfter); alert 14 days before.',
      labelNames: ['name', 'version'],
      registers: [prom],
      collect() {
        this.reset();
        for (const v of versionsNow()) {
          const certificate = signerCertificate(v.signer);
          if (certificate && (v.state === 'active' || v.state === 'ready'))
            this.set({ name: v.name, version: v.version }, Date.parse(certificate.notAfter) / 1000);
        }
      },
    });
    new Gauge({
      name: 'hotocr_trust_expiry_timestamp_seconds',
      help: "When trusting each key or pinned root ends: a key's Not-After, a root's Not-After or the end of its certificate, whichever comes first.",
      labelNames: ['kind', 'fingerprint', 'file'],
      registers: [prom],
      collect() {
        this.reset();
        for (const e of sources.trust?.() ?? [])
          if (e.notAfter && e.kind !== 'deny')
            this.set(
              { kind: e.kind, fingerprint: e.fingerprint, file: e.source },
              Date.parse(e.notAfter) / 1000,
            );
      },
    });
    new Gauge({
      name: 'hotocr_active_versions',
      help: 'Models with an active version: 0 means nothing can be served.',
      registers: [prom],
      collect() {
        this.set(versionsNow().filter((v) => v.state === 'active').length);
      },
    });
    if (sources.registrySources) {
      const statuses = sources.registrySources;
      new Gauge({
        name: 'hotocr_registry_up',
        help: 'Whether the last look at each followed repository succeeded (1) or failed (0).',
        labelNames: ['name', 'repository'],
        registers: [prom],
        collect() {
          this.reset();
          for (const s of statuses())
            this.set({ name: s.model ?? '', repository: s.following }, s.lastError ? 0 : 1);
        },
      });
    }
    new Gauge({
      name: 'hotocr_ocr_queue_depth',
      help: 'OCR requests waiting for an inference slot, per model.',
      labelNames: ['name'],
      registers: [prom],
      collect() {
        this.reset();
        for (const m of perModel()) this.set({ name: m.model }, m.queued);
      },
    });
    new Gauge({
      name: 'hotocr_ocr_running',
      help: 'OCR inferences running now, per model.',
      labelNames: ['name'],
      registers: [prom],
      collect() {
        this.reset();
        for (const m of perModel()) this.set({ name: m.model }, m.running);
      },
    });

    // The inference threads are the process's (HOT-SWAP.md), so these are the process's figures.
    const { threads } = sources;
    if (threads) {
      new Gauge({
        name: 'hotocr_optimized_graphs',
        help: 'Graphs kept in the form onnxruntime-node optimized them, for later versions to reuse (process-wide).',
        registers: [prom],
        collect() {
          this.set(threads.optimizedGraphStats().entries);
        },
      });
      new Gauge({
        name: 'hotocr_optimized_graph_bytes',
        help: 'Memory the optimized graphs take (at most 128 MiB; process-wide).',
        registers: [prom],
        collect() {
          this.set(threads.optimizedGraphStats().bytes);
        },
      });
      new Counter({
        name: 'hotocr_optimized_graph_lookups_total',
        help: 'Graphs of a loading version looked up among the optimized ones: hit (reused) or miss (optimized now; process-wide).',
        labelNames: ['result'],
        registers: [prom],
        collect() {
          const { hits, misses } = threads.optimizedGraphStats();
          this.reset();
          this.inc({ result: 'hit' }, hits);
          this.inc({ result: 'miss' }, misses);
        },
      });
      new Counter({
        name: 'hotocr_graph_sessions_shared_total',
        help: 'Graphs a loading version found open for a loaded version with the same digest, runtime and options, and shared (process-wide).',
        registers: [prom],
        collect() {
          this.reset();
          this.inc(threads.sharedGraphSessions());
        },
      });
      new Counter({
        name: 'hotocr_inference_threads_lost_total',
        help: 'Inference threads that died (an uncaught error on the thread, or its exit) rather than being stopped (process-wide).',
        registers: [prom],
        collect() {
          this.reset();
          this.inc(threads.lostThreads());
        },
      });
      new Counter({
        name: 'hotocr_inference_threads_replaced_total',
        help: 'Inference threads started in place of one that died, with every version it held loaded again (process-wide).',
        registers: [prom],
        collect() {
          this.reset();
          this.inc(threads.replacedThreads());
        },
      });
    }

    this.#requestSeconds = new Histogram({
      name: 'hotocr_ocr_request_seconds',
      help: 'OCR request time, from arrival to answer, by the version that answered.',
      labelNames: ['name', 'version'],
      buckets: [0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2.5, 5, 10, 30],
      registers: [prom],
    });
    this.#requests = new Counter({
      name: 'hotocr_ocr_requests_total',
      help: 'OCR requests by the version that answered ("none" when none did) and HTTP status.',
      labelNames: ['name', 'version', 'status'],
      registers: [prom],
    });
    this.#documentPages = new Counter({
      name: 'hotocr_document_pages_total',
      help: 'Pages of documents read, by the version that read them and the kind of document (pdf, image: a multi-page TIFF).',
      labelNames: ['name', 'version', 'kind'],
      registers: [prom],
    });
    // The PDF rendering thread is the process's (docs/API.md, Documents), so these are the process's figures.
    new Counter({
      name: 'hotocr_pdf_renderer_stops_total',
      help: 'PDF rendering threads stopped, by reason: deadline (a page still rendering at its request deadline), crashed (PDFium trapped or the thread died), retired (its PDFium memory grew past the limit) (process-wide).',
      labelNames: ['reason'],
      registers: [prom],
      collect() {
        this.reset();
        const stats = pdfRendererStats();
        for (const reason of ['deadline', 'crashed', 'retired'] as const) this.inc({ reason }, stats[reason]);
      },
    });
    this.#canaryRollbacks = new Counter({
      name: 'hotocr_canary_rollbacks_total',
      help: 'Splits ended by the canary guard, by canary version and cause (error-rate, p99).',
      labelNames: ['name', 'version', 'cause'],
      registers: [prom],
    });
  }

  /** Counts one page of a document read by model `name`'s version `version` (`name/version`). */
  documentPage(name: string, version: string, kind: 'pdf' | 'image'): void {
    this.#documentPages.inc({ name, version, kind });
  }

  /** Counts a split the canary guard ended. */
  canaryRollback(name: string, version: string, cause: string): void {
    this.#canaryRollbacks.inc({ name, version, cause });
  }

  /** Records one OCR request; `version` is `name/version`, or undefined when none answered. */
  /**
   * One OCR request answered: `name` is the model asked for ('' when it could not be told),
   * `version` the `name/version` that answered (none when no version did).
   */
  ocrRequest(name: string, version: string | undefined, status: number, seconds: number): void {
    const v = version ?? 'none';
    const n = name || 'none';
    this.#requests.inc({ name: n, version: v, status: String(status) });
    if (version !== undefined) this.#requestSeconds.observe({ name: n, version: v }, seconds);
  }

  get contentType(): string {
    return this.prom.contentType;
  }

  text(): Promise<string> {
    return this.prom.metrics();
  }
}
