import { readFileSync } from 'node:fs';

/**
 * hotocr's version, as package.json says: what `hotocr --version` and the OpenAPI document
 * show. Read once, from the package next to the compiled code
 * (dist/src/version.js, two folders down), as the container image lays it out too.
 */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
