export {
  ANNOTATION_NAME,
  ANNOTATION_VERSION,
  CONFIG_MEDIA_TYPE,
  OciClient,
  type OciClientOptions,
  type OciManifest,
  PACKAGE_MEDIA_TYPE,
  READ_LIMITS,
  readLimited,
} from './client.js';
export { formatReference, type OciReference, parseReference } from './reference.js';
