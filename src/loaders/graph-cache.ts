/**
 * Graphs as onnxruntime-node optimized them, by the SHA-256 of the verified bytes each was
 * made from: a thread that opens one of these skips graph optimization, about half the
 * time a session takes to open. Held in memory only, never on disk, where it could be
 * changed after it was made. The least recently used go first past `capacity` bytes.
 */
export class OptimizedGraphs {
  readonly #entries = new Map<string, Uint8Array>();
  #bytes = 0;
  #hits = 0;
  #misses = 0;

  constructor(readonly capacity: number) {}

  /** The optimized form of the graph whose verified bytes have this digest, if kept. */
  get(digest: string): Uint8Array | undefined {
    const bytes = this.#entries.get(digest);
    if (bytes === undefined) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    // Most recently used last.
    this.#entries.delete(digest);
    this.#entries.set(digest, bytes);
    return bytes;
  }

  /** Whether the graph whose verified bytes have this digest is kept (not counted as a look-up). */
  has(digest: string): boolean {
    return this.#entries.has(digest);
  }

  /** Keeps `bytes` (not copied: the caller gives them up), unless they alone exceed the capacity. */
  set(digest: string, bytes: Uint8Array): void {
    this.delete(digest);
    if (bytes.byteLength > this.capacity) return;
    this.#entries.set(digest, bytes);
    this.#bytes += bytes.byteLength;
    for (const [oldest] of this.#entries) {
      if (this.#bytes <= this.capacity) break;
      this.delete(oldest);
    }
  }

  delete(digest: string): void {
    const bytes = this.#entries.get(digest);
    if (bytes === undefined) return;
    this.#entries.delete(digest);
    this.#bytes -= bytes.byteLength;
  }

  /** What is kept and how often it was found. */
  stats(): { entries: number; bytes: number; hits: number; misses: number } {
    return { entries: this.#entries.size, bytes: this.#bytes, hits: this.#hits, misses: this.#misses };
  }
}
