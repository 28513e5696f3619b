import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';

const ASSETS = join(import.meta.dirname, '..', '..', '..', 'assets', 'dashboard');
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};
/** The page talks to this server only: no CDN, no inline script. */
const CSP =
  "default-src 'self'; connect-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

/**
 * GET /: the dashboard, one page from files the server ships (assets/dashboard) plus uPlot
 * from its npm package; read once at start, served from memory.
 */
export async function dashboardRoutes(app: FastifyInstance): Promise<void> {
  const uplot = dirname(createRequire(import.meta.url).resolve('uplot'));
  const files: Record<string, { path: string; type: string }> = {
    '/': { path: join(ASSETS, 'index.html'), type: TYPES['.html']! },
    '/dashboard/app.js': { path: join(ASSETS, 'app.js'), type: TYPES['.js']! },
    '/dashboard/style.css': { path: join(ASSETS, 'style.css'), type: TYPES['.css']! },
    '/dashboard/vendor/uPlot.esm.js': { path: join(uplot, 'uPlot.esm.js'), type: TYPES['.js']! },
    '/dashboard/vendor/uPlot.min.css': { path: join(uplot, 'uPlot.min.css'), type: TYPES['.css']! },
  };
  for (const [url, file] of Object.entries(files)) {
    const body = await readFile(file.path);
    app.get(url, { schema: { hide: true } }, async (_request, reply) =>
      reply
        .header('content-type', file.type)
        .header('content-security-policy', CSP)
        .header('x-content-type-options', 'nosniff')
        .header('cache-control', 'no-cache')
        .send(body),
    );
  }
}
