// A hotocr loader plugin, as small as the contract allows (docs/LOADERS.md).
//
// It runs packages whose config.json says "runtime": "constant": every image is answered
// with one line, the package's "description", boxed around the whole image. No inference
// at all: a stand-in backend for exercising swaps, routing, dashboards and load balancers
// without paying for OCR.
//
//   hotocr serve --loader ./examples/loaders/constant-loader.mjs ...
//
// A plugin runs inside the server with its privileges: load only code you trust.

/** @type {import('../../dist/src/loaders/contract.js').ModelLoader} */
const loader = {
  name: 'constant',

  // Asked for every package, in order, after the plugins before it. `manifest.runtime` is
  // always set: the package's own, or the server's --runtime when the package names none.
  supports(manifest) {
    return manifest.runtime === 'constant';
  },

  // Shown under `loader` in GET /v1/models: strings, numbers and booleans only.
  metadata(manifest) {
    return { runtime: 'constant', text: manifest.description ?? '' };
  },

  // `pkg` holds the manifest, the package's SHA-256 and the verified bytes of every file
  // (pkg.files: entry name -> Uint8Array), never a path. Throw to refuse: the version
  // fails with LOAD_FAILED and your message, and the version in service keeps serving.
  async load(pkg) {
    const text = pkg.manifest.description;
    if (!text) throw new Error('a "constant" package needs a description: the text to answer with');
    let released = false;
    return {
      // Called concurrently; must resolve to { lines: [{ text, score, box }], timings? }.
      async read(image, options) {
        if (released) throw new Error('released');
        if (options?.signal?.aborted) throw new Error('aborted');
        const { width: w, height: h } = image;
        return {
          lines: [
            {
              text,
              score: 1,
              box: [
                [0, 0],
                [w, 0],
                [w, h],
                [0, h],
              ],
            },
          ],
          timings: { det: 0, cls: 0, rec: 0, inference: 0, total: 0 },
        };
      },
      // Called once, when the version has drained.
      async release() {
        released = true;
      },
    };
  },
};

export default loader;
