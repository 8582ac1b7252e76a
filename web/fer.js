// The face-expression recognizer as a JavaScript module: `recognize(imageData) -> faces`
// and `track(imageData) -> faces`, on the int8 engine compiled to WebAssembly (fer-web).
// `load()` takes the SIMD128 build when the browser validates SIMD, else the scalar one.

// A module with one v128 instruction (from wasm-feature-detect): valid only with SIMD.
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]);

export function hasSimd() {
  return WebAssembly.validate(SIMD_PROBE);
}

const now = () => (globalThis.performance ? performance.now() : Date.now());

/**
 * Loads the recognizer. Options: `simd` (default: what the browser has), `base` (the
 * folder holding pkg/ and pkg-simd/, default this module's), `wasm` (the .wasm bytes or
 * URL, for Node.js).
 */
export async function load({ simd = hasSimd(), base = new URL('.', import.meta.url), wasm } = {}) {
  const glue = await import(new URL(simd ? 'pkg-simd/fer.js' : 'pkg/fer.js', base).href);
  await glue.default(wasm === undefined ? undefined : { module_or_path: wasm });
  const r = new glue.WebRecognizer();
  const labels = r.labels();
  const stride = r.faceStride();
  const classes = labels.length;

  // The label of `fer predict --unsure-below P`: the top class, or `unsure` under P.
  const label = (p, unsureBelow) => {
    let top = 0;
    for (let k = 1; k < p.length; k++) if (p[k] > p[top]) top = k;
    return unsureBelow !== undefined && p[top] < unsureBelow ? 'unsure' : labels[top];
  };
  const unpack = (flat, unsureBelow) => {
    const faces = [];
    for (let at = 0; at + stride <= flat.length; at += stride) {
      const v = flat.subarray(at, at + stride);
      const keypoints = [];
      for (let k = 0; k < 6; k++) keypoints.push([v[5 + 2 * k], v[6 + 2 * k]]);
      const probabilities = Array.from(v.subarray(17, 17 + classes));
      const track = v[17 + classes];
      faces.push({
        box: Array.from(v.subarray(0, 4)),
        score: v[4],
        keypoints,
        label: label(probabilities, unsureBelow),
        probabilities,
        ...(track >= 0 ? { track } : {}),
      });
    }
    return faces;
  };
  let size = [0, 0];
  const run = (image, tracked, { unsureBelow } = {}) => {
    const t0 = now();
    size = [image.width, image.height];
    r.detect(image.data, image.width, image.height);
    const t1 = now();
    const flat = r.classify(tracked);
    const t2 = now();
    api.last = { detectMs: t1 - t0, classifyMs: t2 - t1 };
    return unpack(flat, unsureBelow);
  };
  const api = {
    labels,
    simd,
    kernels: r.kernels(),
    /** Milliseconds of the last call's two stages. */
    last: { detectMs: 0, classifyMs: 0 },
    /** The faces of one image (`ImageData`, or `{data, width, height}` with RGBA bytes). */
    recognize: (image, options) => run(image, false, options),
    /** The faces of a video frame, followed across calls as `fer live` follows them. */
    track: (image, options) => run(image, true, options),
    /** Probabilities of one image at the model's input size (48x48 gray bytes). */
    classifyImage: (pixels) => Array.from(r.classifyImage(pixels)),
    /** The last frame with its faces drawn as `fer live` draws them, as ImageData. */
    draw: () => new ImageData(new Uint8ClampedArray(r.draw()), size[0], size[1]),
  };
  return api;
}
