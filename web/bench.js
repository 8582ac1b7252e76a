// Per-frame latency of detect + classify, ours and face-api.js's, on the same frames of
// the camera (the test's fake camera plays a clip), in the same tab, one after the other.
import { load } from './fer.js';
import * as faceapi from './node_modules/@vladmandic/face-api/dist/face-api.esm.js';

const FRAMES = Number(new URLSearchParams(location.search).get('frames') ?? 60);
const WARMUP = 5;
const out = document.getElementById('out');

async function captureFrames(n) {
  const video = document.getElementById('video');
  video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
  await video.play();
  const c = document.createElement('canvas');
  const ctx = c.getContext('2d', { willReadFrequently: true });
  const frames = [];
  while (frames.length < n) {
    await new Promise((ok) => video.requestVideoFrameCallback(ok));
    c.width = video.videoWidth;
    c.height = video.videoHeight;
    ctx.drawImage(video, 0, 0);
    frames.push(ctx.getImageData(0, 0, c.width, c.height));
  }
  video.srcObject.getTracks().forEach((t) => t.stop());
  return frames;
}

const stats = (ms, faces) => {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { frames: ms.length, p50: at(0.5), p99: at(0.99), mean: ms.reduce((a, b) => a + b, 0) / ms.length, faces };
};

async function ours(frames) {
  const fer = await load();
  const ms = [];
  let faces = 0;
  for (const [i, f] of frames.entries()) {
    const t0 = performance.now();
    const found = fer.recognize(f);
    const t = performance.now() - t0;
    if (i >= WARMUP) {
      ms.push(t);
      faces += found.length;
    }
  }
  return { engine: `fer int8, ${fer.kernels}`, ...stats(ms, faces) };
}

async function faceApi(frames) {
  const tf = faceapi.tf;
  tf.setWasmPaths(new URL('node_modules/@tensorflow/tfjs-backend-wasm/dist/', location.href).href);
  await tf.setBackend('wasm');
  await tf.ready();
  const models = new URL('node_modules/@vladmandic/face-api/model', location.href).href;
  await faceapi.nets.tinyFaceDetector.loadFromUri(models);
  await faceapi.nets.faceExpressionNet.loadFromUri(models);
  const options = new faceapi.TinyFaceDetectorOptions();
  const c = document.createElement('canvas');
  const ctx = c.getContext('2d');
  const ms = [];
  let faces = 0;
  for (const [i, f] of frames.entries()) {
    c.width = f.width;
    c.height = f.height;
    ctx.putImageData(f, 0, 0);
    const t0 = performance.now();
    const found = await faceapi.detectAllFaces(c, options).withFaceExpressions();
    const t = performance.now() - t0;
    if (i >= WARMUP) {
      ms.push(t);
      faces += found.length;
    }
  }
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
  return { engine: `face-api.js ${faceapi.version} on tfjs ${tf.version_core} ${tf.getBackend()} (simd ${simd}, threads ${threads})`, ...stats(ms, faces) };
}

// Accuracy on face crops (`?crops=URL`: records of a class byte and 48x48 gray pixels):
// our classifier on its own input, and FaceExpressionNet on the same crop as RGB.
const FACE_API_TO_FER = { angry: 0, disgusted: 1, fearful: 2, happy: 3, sad: 4, surprised: 5, neutral: 6 };

function score(confusion) {
  const total = confusion.flat().reduce((a, b) => a + b, 0);
  const right = confusion.reduce((a, row, i) => a + row[i], 0);
  const recalls = confusion.map((row, i) => row[i] / Math.max(1, row.reduce((a, b) => a + b, 0)));
  const present = confusion.map((row) => row.reduce((a, b) => a + b, 0) > 0);
  const balanced = recalls.filter((_, i) => present[i]).reduce((a, b) => a + b, 0) / present.filter(Boolean).length;
  return { images: total, accuracy: right / total, balanced_accuracy: balanced, recalls };
}

async function accuracy(url) {
  const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
  const per = 1 + 48 * 48;
  const n = bytes.length / per;
  const fer = await load();
  const tf = faceapi.tf;
  tf.setWasmPaths(new URL('node_modules/@tensorflow/tfjs-backend-wasm/dist/', location.href).href);
  await tf.setBackend('wasm');
  await faceapi.nets.faceExpressionNet.loadFromUri(new URL('node_modules/@vladmandic/face-api/model', location.href).href);
  const ours = Array.from({ length: 7 }, () => new Array(7).fill(0));
  const theirs = Array.from({ length: 7 }, () => new Array(7).fill(0));
  const argmax = (p) => p.reduce((best, v, i) => (v > p[best] ? i : best), 0);
  for (let k = 0; k < n; k++) {
    const label = bytes[k * per];
    const gray = bytes.subarray(k * per + 1, (k + 1) * per);
    ours[label][argmax(fer.classifyImage(gray))] += 1;
    const rgb = tf.tidy(() => tf.tensor3d(Float32Array.from(gray), [48, 48, 1]).tile([1, 1, 3]));
    const e = await faceapi.nets.faceExpressionNet.predictExpressions(rgb);
    rgb.dispose();
    const p = new Array(7).fill(0);
    for (const [name, v] of Object.entries(e)) if (name in FACE_API_TO_FER) p[FACE_API_TO_FER[name]] = v;
    theirs[label][argmax(p)] += 1;
  }
  return { ours: score(ours), faceapi: score(theirs) };
}

async function speed() {
  const frames = await captureFrames(FRAMES + WARMUP);
  const a = await ours(frames);
  const b = await faceApi(frames);
  return { size: [frames[0].width, frames[0].height], ours: a, faceapi: b, ratio_p50: a.p50 / b.p50 };
}

try {
  const crops = new URLSearchParams(location.search).get('crops');
  window.__bench = crops ? { accuracy: await accuracy(crops) } : await speed();
  out.textContent = JSON.stringify(window.__bench, null, 2);
} catch (e) {
  window.__bench = { error: String(e) };
  out.textContent = String(e);
}
