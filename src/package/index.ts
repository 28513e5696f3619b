export { type ArchiveEntry, collect, PackageArchive } from './archive.js';
export {
  CHECKSUM_FILE,
  formatChecksumFile,
  OMS_SIGNATURE_FILE,
  parseChecksumFile,
  SIGNATURE_FILE,
  SIGNER_FILE,
  UNLISTED_ENTRIES,
} from './checksum-file.js';
export { type ArchiveLimits, DEFAULT_LIMITS } from './limits.js';
export { FORMAT, MANIFEST_FILE, type Manifest, parseManifest, referencedFiles } from './manifest.js';
