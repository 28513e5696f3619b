// test-needs: model, browser, documents
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { appendFile, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PDFDocument, StandardFonts } from 'pdf-lib';
import pino from 'pino';
import { type Browser, chromium, type Page } from 'playwright-core';
import { type RunningServer, startServer } from '../src/app/index.js';
import { readServeConfig } from '../src/config.js';
import { bundledManifest, keyFileSigner, pack, writeBundledSource } from '../src/pack/index.js';
import { renderText } from './helpers/images.js';
import { pdfOf } from './helpers/pdfs.js';
import { tempDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';

/** Screenshots land here (git ignores it). */
const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts');
const TOKEN = 'dashboard-admin-token-0123456789';
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

const work = tempDir();
const home = join(work, 'home');
const models = join(work, 'models');
let server: RunningServer;
let browser: Browser;
let page: Page;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await startServer(
    readServeConfig(
      { port: '0', host: '127.0.0.1', data: home, models, settleMs: '200', adminToken: TOKEN, keepWarm: '1' },
      {},
    ),
    pino({ level: 'silent' }),
  );
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_FLAGS });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(server.url);
});
after(async () => {
  await browser?.close();
  await server?.close();
});

const shot = (name: string, target: Page = page) =>
  target.screenshot({ path: join(ARTIFACTS, `dashboard-${name}.png`), fullPage: true });
const activeVersion = () => page.locator('[data-testid=active-version]').first();

describe('the dashboard', () => {
  test('shows the active version and a live event stream', async () => {
    await page.locator('[data-testid=active-version]', { hasText: '4.0.0' }).waitFor();
    await page.locator('#live[data-state=live]').waitFor();
    assert.equal(await page.locator('tr.state-active').count(), 1);
    assert.match((await page.locator('tr.state-active').textContent()) ?? '', /★ active/);
    await shot('active');
  });

  test('switches to a version dropped into the watched folder without a reload', async () => {
    // Browser-side expressions are strings: this file is compiled without the DOM library.
    await page.evaluate('window.marker = 42');
    const src = await writeBundledSource(join(work, 'src-4.1.0'), '4.1.0');
    const next = join(work, 'ppocr-4.1.0.zip');
    await pack(src, { signer: await keyFileSigner(join(home, 'dev-key', 'signing.key')), out: next });
    await rename(next, join(models, 'ppocr-4.1.0.zip'));
    await page.locator('[data-testid=active-version]', { hasText: '4.1.0' }).waitFor({ timeout: 30_000 });
    await page.locator('#events li[data-type=activated]', { hasText: '4.1.0' }).waitFor();
    assert.equal(await page.evaluate('window.marker'), 42, 'no reload');
    assert.equal(await activeVersion().textContent(), '4.1.0');
    await shot('swapped');
  });

  test('shows a refused package with its reason code', async () => {
    await writeFile(join(work, 'broken.zip'), 'this is not a zip archive');
    await rename(join(work, 'broken.zip'), join(models, 'broken.zip'));
    const rejected = page.locator('#events li[data-type=rejected]');
    await rejected.first().waitFor({ timeout: 20_000 });
    assert.equal(await rejected.first().getAttribute('data-code'), 'ARCHIVE_INVALID');
    assert.match((await rejected.first().textContent()) ?? '', /ARCHIVE_INVALID: /);
    assert.equal(await activeVersion().textContent(), '4.1.0');
    await shot('rejected');
  });

  test('reads an uploaded image: boxes over it, the lines beside, the version and timings', async () => {
    const image = await renderText(['Dashboard upload 2026', 'Second line here']);
    await page.setInputFiles('#file', { name: 'page.png', mimeType: 'image/png', buffer: image });
    await page.locator('#lines li').nth(1).waitFor({ timeout: 20_000 });
    const texts = (await page.locator('#lines li button').allTextContents()).map((t) => t.replace(/ /g, ''));
    assert.deepEqual(texts, ['Dashboardupload2026', 'Secondlinehere']);
    assert.equal(await page.locator('#figure svg polygon').count(), 2);
    assert.match((await page.locator('#answer').textContent()) ?? '', /read by ppocr 4\.1\.0 in [\d.]+ ms/);
    await page.locator('#lines li button').nth(1).click();
    assert.equal(await page.locator('#figure polygon.selected').getAttribute('data-line'), '1');
    await shot('try-it');
  });

  test('reads a PDF: each page as the server rendered it, with its boxes, and its lines under its number', async () => {
    const doc = await PDFDocument.create();
    const font = await doc.embedFont(StandardFonts.HelveticaBold);
    for (const text of ['DASHBOARD PDF 11', 'SECOND SHEET 22'])
      doc.addPage([612, 792]).drawText(text, { x: 60, y: 672, size: 40, font });
    await page.setInputFiles('#file', {
      name: 'doc.pdf',
      mimeType: 'application/pdf',
      buffer: Buffer.from(await doc.save()),
    });
    await page.locator('#figure figure').nth(1).waitFor({ timeout: 30_000 });
    assert.deepEqual(await page.locator('#figure figcaption').allTextContents(), ['page 1', 'page 2']);
    assert.deepEqual(await page.locator('#lines li.page-heading').allTextContents(), ['page 1', 'page 2']);
    const texts = (await page.locator('#lines li button').allTextContents()).map((t) => t.replace(/ /g, ''));
    assert.deepEqual(texts, ['DASHBOARDPDF11', 'SECONDSHEET22']);
    // The page images are the server's rendering, loaded: boxes sit over pictures, not broken links.
    assert.equal(await page.locator('#figure img').count(), 2);
    assert.equal(await page.evaluate("document.querySelector('#figure img').naturalWidth"), 1275);
    assert.equal(await page.locator('#figure svg polygon').count(), 2);
    assert.match(
      (await page.locator('#answer').textContent()) ?? '',
      /2 lines on 2 of 2 pages, read by ppocr/,
    );
    await page.locator('#lines li button').nth(1).click();
    assert.equal(await page.locator('#figure polygon.selected').getAttribute('data-line'), '1.0');
    await shot('try-it-pdf');
  });

  test('reads a PDF that needs a password once it is typed in, without choosing the file again', async () => {
    const plain = join(work, 'dash-plain.pdf');
    const locked = join(work, 'dash-locked.pdf');
    await writeFile(plain, await pdfOf([['LOCKED SHEET 33']]));
    // A password beyond ASCII: the browser sends its UTF-8 bytes, as AES-256 wants them.
    execFileSync('qpdf', ['--encrypt', 'mot-de-passe-é', 'owner', '256', '--', plain, locked]);
    await page.fill('#try-password', '');
    await page.setInputFiles('#file', {
      name: 'locked.pdf',
      mimeType: 'application/pdf',
      buffer: await readFile(locked),
    });
    await until(
      async () => /Refused: DOCUMENT_ENCRYPTED/.test((await page.locator('#answer').textContent()) ?? ''),
      'the refusal',
    );
    await page.fill('#try-password', 'mot-de-passe-é');
    await page.locator('#try-password').press('Enter');
    await page.locator('#try-password').blur();
    await until(
      async () => /read by ppocr/.test((await page.locator('#answer').textContent()) ?? ''),
      'the page read',
      30_000,
    );
    const texts = (await page.locator('#lines li button').allTextContents()).map((t) => t.replace(/ /g, ''));
    assert.deepEqual(texts, ['LOCKEDSHEET33']);
    await page.fill('#try-password', '');
  });

  test('admin buttons wait for a token, refuse a wrong one, and act with the right one', async () => {
    const rollback = page.getByRole('button', { name: 'Roll back' });
    assert.equal(await rollback.isDisabled(), true);
    await page.fill('#token', 'a-wrong-token-of-enough-length');
    await page.click('#token-form button[type=submit]');
    assert.equal(await rollback.isDisabled(), false);
    await rollback.click();
    await page.locator('#admin-message[data-result=refused]', { hasText: 'ADMIN_TOKEN_INVALID' }).waitFor();
    assert.equal(server.registry.active()?.version, '4.1.0');
    await shot('refused');

    await page.fill('#token', TOKEN);
    await page.click('#token-form button[type=submit]');
    await rollback.click();
    await page.locator('[data-testid=active-version]', { hasText: '4.0.0' }).waitFor({ timeout: 20_000 });
    assert.equal(server.registry.active()?.version, '4.0.0');
    // The token lives in this tab's sessionStorage only: not in localStorage, not in the URL.
    const stored = await page.evaluate<{ session: string | null; local: number; url: string }>(
      "({ session: sessionStorage.getItem('hotocr-admin-token'), local: localStorage.length, url: location.href })",
    );
    assert.equal(stored.session, TOKEN);
    assert.equal(stored.local, 0);
    assert.ok(!stored.url.includes(TOKEN));
  });

  test('fits a phone-width screen without sideways scrolling', async () => {
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 } });
    try {
      await phone.goto(server.url);
      await phone.locator('[data-testid=active-version]', { hasText: '4.0.0' }).waitFor();
      const overflow = await phone.evaluate<number>(
        'document.documentElement.scrollWidth - window.innerWidth',
      );
      assert.ok(overflow <= 0, `the page is ${overflow} px wider than the screen`);
      await shot('phone', phone);
    } finally {
      await phone.close();
    }
  });

  test('with two models: a card each (versions, routing, traffic), and "try it" reads with the model picked', async () => {
    const src = await writeBundledSource(join(work, 'src-en'), '1.0.0');
    await writeFile(join(src, 'config.json'), JSON.stringify({ ...bundledManifest('1.0.0'), name: 'en' }));
    const zip = join(work, 'en-1.0.0.zip');
    await pack(src, { signer: await keyFileSigner(join(home, 'dev-key', 'signing.key')), out: zip });
    const uploaded = await fetch(`${server.url}/v1/models`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/zip' },
      body: await readFile(zip),
    });
    assert.equal(uploaded.status, 201);
    const en = page.locator('section.model[data-model=en]');
    const ppocr = page.locator('section.model[data-model=ppocr]');
    await en.locator('[data-testid=active-version]', { hasText: '1.0.0' }).waitFor({ timeout: 20_000 });
    assert.equal(await ppocr.locator('[data-testid=active-version]').textContent(), '4.0.0');
    // Neither is the default (none is set, and two are active): no card says so, and nothing says "null".
    assert.equal(await page.locator('[data-testid=default-model]').count(), 0);
    assert.doesNotMatch((await page.locator('#models').textContent()) ?? '', /null|undefined/);
    for (const card of [en, ppocr]) {
      assert.equal(await card.locator('tr.state-active').count(), 1);
      assert.equal(await card.locator('form.routing input[type=checkbox]').count(), 1);
    }
    assert.match(
      (await en.locator('[data-testid=routing-summary]').textContent()) ?? '',
      /active version \(1\.0\.0\)/,
    );

    // Two models and no default: the page says what the server says, then reads with the one picked.
    const image = await renderText(['Picked model 7']);
    await page.setInputFiles('#file', { name: 'a.png', mimeType: 'image/png', buffer: image });
    await page.locator('#answer', { hasText: 'MODEL_REQUIRED' }).waitFor({ timeout: 20_000 });
    await page.selectOption('#try-model', 'en');
    await page.setInputFiles('#file', { name: 'b.png', mimeType: 'image/png', buffer: image });
    await page.locator('#answer', { hasText: 'read by en 1.0.0' }).waitFor({ timeout: 20_000 });
    // Its traffic is drawn in its own card.
    await en.locator('.charts .uplot').first().waitFor({ timeout: 20_000 });
    await shot('two-models');

    // Retired from its card: its versions drain, and the card goes.
    page.once('dialog', (dialog) => void dialog.accept());
    await en.getByRole('button', { name: 'Retire' }).click();
    await en.waitFor({ state: 'detached', timeout: 20_000 });
    assert.equal(server.registry.active('en'), undefined);
    assert.equal(await ppocr.locator('[data-testid=active-version]').textContent(), '4.0.0');
  });

  test('says who signed each version: an OMS package by its key, marked OMS', async () => {
    // An EC key trusted beside the development one (the trust file is read again on change).
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const keyPath = join(work, 'oms.key');
    await writeFile(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const trustFile = join(home, 'dev-key', 'signing.pub');
    await appendFile(trustFile, publicKey.export({ type: 'spki', format: 'pem' }));
    const keys = async () =>
      ((await (await fetch(`${server.url}/v1/models`)).json()) as { trust: { kind: string }[] }).trust.filter(
        (t) => t.kind === 'key',
      ).length;
    await until(async () => (await keys()) === 2, 'the EC key trusted');
    const src = await writeBundledSource(join(work, 'src-4.2.0'), '4.2.0');
    const zip = join(work, 'ppocr-4.2.0.zip');
    await pack(src, { signer: await keyFileSigner(keyPath), out: zip, format: 'oms' });
    await rename(zip, join(models, 'ppocr-4.2.0.zip'));
    const ppocr = page.locator('section.model[data-model=ppocr]');
    await ppocr.locator('[data-testid=active-version]', { hasText: '4.2.0' }).waitFor({ timeout: 30_000 });
    const row = ppocr.locator('tr.state-active');
    assert.match((await row.textContent()) ?? '', /OMS key [0-9a-f]+.* signing\.pub/);
    assert.doesNotMatch((await ppocr.textContent()) ?? '', /undefined/);
    await shot('oms-signer');
  });
});
