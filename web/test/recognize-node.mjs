// Runs the browser recognizer under Node.js on raw RGBA frames and prints their faces as
// JSON, for web/tests/wasm.rs to compare with the native app's:
//   node web/test/recognize-node.mjs MANIFEST.json simd|scalar
// MANIFEST: [{"rgba": "frame.rgba", "width": W, "height": H}, ...]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { load } from '../fer.js';

const [manifestPath, which] = process.argv.slice(2);
const simd = which === 'simd';
const wasm = readFileSync(fileURLToPath(new URL(`../${simd ? 'pkg-simd' : 'pkg'}/fer_bg.wasm`, import.meta.url)));
const fer = await load({ simd, wasm });
const frames = JSON.parse(readFileSync(manifestPath, 'utf8'));
const out = frames.map((f) => {
  const data = new Uint8Array(readFileSync(f.rgba));
  return { faces: fer.recognize({ data, width: f.width, height: f.height }) };
});
console.log(JSON.stringify({ kernels: fer.kernels, frames: out }));
