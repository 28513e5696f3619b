// test-needs: documents
/**
 * The searchable copy's own thread: its heap limit, the client going away, the deadline, and
 * one copy at a time. Pages are given their lines by hand: no model is needed here.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { openDocument } from '../src/documents/index.js';
import { searchablePdf } from '../src/documents/searchable-pdf.js';
import { HotocrError } from '../src/errors.js';
import type { Quad } from '../src/ocr/index.js';
import { manyObjects, pdfOf } from './helpers/pdfs.js';
import { tempDir } from './helpers/tmp.js';

const work = tempDir();
const line = {
  text: 'GIVEN BY HAND',
  box: [
    [60, 60],
    [400, 60],
    [400, 100],
    [60, 100],
  ] as Quad,
};

/** The searchable copy of `pdf`'s first page, with one line said to be on it. */
async function copyOf(pdf: Buffer, options: Parameters<typeof searchablePdf>[2] = {}) {
  const doc = await openDocument(pdf, { dpi: 72, pages: [{ from: 1, to: 1 }] });
  try {
    return await searchablePdf(doc, [{ page: 1, width: 612, height: 792, lines: [line] }], options);
  } finally {
    doc.close();
  }
}

const code = (expected: string) => (e: unknown) => e instanceof HotocrError && e.code === expected;

describe('the searchable copy', () => {
  test('is written on its own thread: a scanned page gets the line, as pdftotext finds', async () => {
    // A page whose text is a picture would do as well; a page of shapes has no text of its own.
    const pdf = await pdfOf([[]]);
    const out = join(work, 'copy.pdf');
    await writeFile(out, await copyOf(pdf));
    assert.match(execFileSync('pdftotext', [out, '-'], { encoding: 'utf8' }), /GIVEN BY HAND/);
  });

  test('past its heap limit is DOCUMENT_TOO_LARGE, and the process lives on', async () => {
    await assert.rejects(copyOf(manyObjects(300_000), { heapMb: 32 }), code('DOCUMENT_TOO_LARGE'));
    assert.ok((await copyOf(await pdfOf([[]]))).length > 0);
  });

  test('stops when the client goes away, and at the deadline', async () => {
    const pdf = manyObjects(300_000);
    // Let run, either copy would be written (in seconds): stopped, each fails with its reason.
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    await assert.rejects(copyOf(pdf, { signal: controller.signal }), code('REQUEST_ABORTED'));
    await assert.rejects(copyOf(pdf, { deadline: performance.now() + 300 }), code('TIMEOUT'));
  });

  test('one copy is written at a time: the next waits its turn, and gives up at its deadline', async () => {
    const heavy = copyOf(manyObjects(300_000), { deadline: performance.now() + 1500 });
    // Behind it, a small copy (written in a fraction of its 400 ms alone) whose deadline comes
    // before the heavy one is given up: it was never let start.
    await assert.rejects(copyOf(await pdfOf([[]]), { deadline: performance.now() + 400 }), code('TIMEOUT'));
    await assert.rejects(heavy, code('TIMEOUT'));
    // The turn was passed on: a copy now is written at once.
    assert.ok((await copyOf(await pdfOf([[]]), { deadline: performance.now() + 5000 })).length > 0);
  });
});
