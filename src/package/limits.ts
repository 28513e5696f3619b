/** Bounds on what a package may be, checked before a byte is decompressed. */
export interface ArchiveLimits {
  /** Size of the ZIP file itself. */
  readonly maxArchiveBytes: number;
  /** Number of entries in the central directory. */
  readonly maxEntries: number;
  /** Sum of the declared uncompressed sizes of all entries. */
  readonly maxTotalUncompressedBytes: number;
  /** Uncompressed/compressed size above which an entry is treated as a zip bomb. */
  readonly maxCompressionRatio: number;
  /** Entries smaller than this (uncompressed) are exempt from the ratio check: tiny files compress well. */
  readonly ratioExemptBytes: number;
  /** Entries that are read into memory whole (config.json, checksum.sha256, signature.sig, signer.pem). */
  readonly maxSmallEntryBytes: number;
}

export const DEFAULT_LIMITS: ArchiveLimits = Object.freeze({
  maxArchiveBytes: 1024 * 1024 * 1024,
  maxEntries: 64,
  maxTotalUncompressedBytes: 2 * 1024 * 1024 * 1024,
  maxCompressionRatio: 100,
  ratioExemptBytes: 1024 * 1024,
  maxSmallEntryBytes: 1024 * 1024,
});
