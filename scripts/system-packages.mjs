#!/usr/bin/env node
// The one list of Debian packages the tests need, by what a test file needs, and the check
// (or install) that runs before tests. A test file says what it needs on a line of its own:
//
//   // test-needs: model, root
//
// A file without that line needs only the base packages: it is in the fast lane
// (`npm run test:unit`). `.ci/run` installs every package before `npm ci`, so that the
// PKCS#11 binding builds.
//
// Usage: node scripts/system-packages.mjs install     (every package; as root, with apt-get)
//        node scripts/system-packages.mjs list        (the install line for every package)
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

/** What each need stands for, and the Debian packages it takes. */
export const NEEDS = {
  base: {
    what: 'keys, certificates and signatures made as operators make them; packages made with zip',
    packages: ['openssl', 'zip', 'unzip', 'ca-certificates'],
  },
  model: {
    what: 'a real PP-OCRv4 model loaded in onnxruntime, reading pages rendered with these fonts',
    packages: ['fonts-dejavu-core', 'fonts-wqy-microhei'],
  },
  root: { what: 'root, to mount a small tmpfs (a disk that fills)', packages: [] },
  softhsm: {
    what: "a PKCS#11 token (SoftHSM, OpenSC's pkcs11-tool) and a compiler for the PKCS#11 binding",
    packages: ['softhsm2', 'opensc', 'g++', 'make', 'python3'],
  },
  documents: {
    what: "poppler's pdftotext and pdfinfo, to read back searchable PDFs; qpdf, to encrypt a PDF",
    packages: ['poppler-utils', 'qpdf'],
  },
  browser: { what: 'Chromium, driven by playwright-core for the dashboard', packages: ['chromium'] },
  registry: {
    what: 'CNCF Distribution, the OCI registry the fleet tests push to',
    packages: ['docker-registry'],
  },
  kubectl: { what: 'kubectl kustomize, for the deployment manifests', packages: ['kubernetes-client'] },
};

/** Packages found another way than by dpkg: a command any package may provide. */
const COMMANDS = { 'kubernetes-client': 'kubectl' };

export const ALL_NEEDS = Object.keys(NEEDS);

const NEEDS_LINE = /^\/\/ test-needs: *(.*)$/m;

/** The needs a test file declares (`// test-needs: a, b`), always with `base`. */
export function needsOf(source) {
  const match = NEEDS_LINE.exec(source);
  const declared = match
    ? match[1]
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : [];
  for (const need of declared)
    if (!(need in NEEDS)) throw new Error(`unknown test need "${need}"; known: ${ALL_NEEDS.join(', ')}`);
  return ['base', ...declared];
}

function installed(pkg) {
  const command = COMMANDS[pkg];
  if (command && spawnSync('sh', ['-c', `command -v ${command}`]).status === 0) return true;
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format, not a template.
  const q = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return q.status === 0 && q.stdout.includes('install ok installed');
}

export function missingPackages(needs) {
  const wanted = [...new Set(needs.flatMap((n) => NEEDS[n].packages))];
  return wanted.filter((p) => !installed(p));
}

const isRoot = () => process.getuid?.() === 0;

function aptInstall(packages) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [
    ['update', '-qq'],
    ['install', '-y', '-qq', '--no-install-recommends', ...packages],
  ]) {
    const r = spawnSync('apt-get', args, { stdio: 'inherit', env });
    if (r.status !== 0) {
      console.error(`apt-get ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
      process.exit(1);
    }
  }
}

/** Whether the optional PKCS#11 binding loads (it is built at npm ci, given a compiler). */
function bindingLoads() {
  try {
    createRequire(import.meta.url)('pkcs11js');
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes sure the packages `needs` take are there before tests start: as root, installs the
 * missing ones with apt-get, saying what (HOTOCR_NO_SYSTEM_INSTALL=1 turns that off);
 * otherwise stops at once, naming them and the line that installs them.
 */
export function ensureNeeds(needs) {
  const problems = [];
  const mayInstall = isRoot() && process.env.HOTOCR_NO_SYSTEM_INSTALL !== '1';
  if (needs.includes('root') && !isRoot())
    problems.push(`some tests need root (${NEEDS.root.what}); run them as root, or leave those files out`);
  const missing = missingPackages(needs);
  if (missing.length > 0) {
    if (mayInstall) {
      console.log(
        `installing the Debian packages these tests need: ${missing.join(' ')} (HOTOCR_NO_SYSTEM_INSTALL=1 stops this)`,
      );
      aptInstall(missing);
    } else {
      const why = [...new Set(needs)]
        .filter((n) => NEEDS[n].packages.some((p) => missing.includes(p)))
        .map((n) => `  ${n}: ${NEEDS[n].what}`)
        .join('\n');
      problems.push(
        `missing Debian packages: ${missing.join(' ')}\n${why}\ninstall them with:\n  sudo apt-get install -y --no-install-recommends ${missing.join(' ')}`,
      );
    }
  }
  if (needs.includes('softhsm') && !bindingLoads()) {
    if (mayInstall && missingPackages(['softhsm']).length === 0) {
      console.log('building the PKCS#11 binding (pkcs11js), left out by an install without a compiler');
      const r = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--no-save'], { stdio: 'inherit' });
      if (r.status !== 0 || !bindingLoads())
        problems.push('the PKCS#11 binding (pkcs11js) did not build; see above');
    } else {
      problems.push(
        'the PKCS#11 binding (the optional npm package pkcs11js) is not installed: install g++ make python3, then run npm ci again',
      );
    }
  }
  if (problems.length > 0) {
    console.error(`Cannot run these tests yet:\n- ${problems.join('\n- ')}`);
    process.exit(1);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const all = [...new Set(ALL_NEEDS.flatMap((n) => NEEDS[n].packages))];
  const command = process.argv[2];
  if (command === 'list') {
    console.log(`apt-get install -y --no-install-recommends ${all.join(' ')}`);
  } else if (command === 'install') {
    const missing = missingPackages(ALL_NEEDS);
    if (missing.length === 0) console.log('every Debian package the tests need is installed');
    else if (!isRoot()) {
      console.error(
        `missing: ${missing.join(' ')}; as root: apt-get install -y --no-install-recommends ${missing.join(' ')}`,
      );
      process.exit(1);
    } else {
      console.log(`installing: ${missing.join(' ')}`);
      aptInstall(missing);
    }
  } else {
    console.error('usage: node scripts/system-packages.mjs install|list');
    process.exit(2);
  }
  if (!existsSync('/usr/bin/dpkg-query')) console.error('note: no dpkg-query here; this list is for Debian');
}
