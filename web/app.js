// The live page: webcam frames (or a dropped photo) through the recognizer, the overlay
// drawn by the same code as `fer live`, fps and per-stage latency, clear messages.
import { hasSimd, load } from './fer.js';

const $ = (id) => document.getElementById(id);
const view = $('view');
const ctx = view.getContext('2d', { willReadFrequently: true });
const video = $('video');
const grab = document.createElement('canvas');
const grabCtx = grab.getContext('2d', { willReadFrequently: true });

function say(text, kind = 'error') {
  const m = $('message');
  m.textContent = text;
  m.className = text ? kind : '';
}

// Latencies of the last frames, for p50/p99 and fps.
const window_ = 120;
const timings = { total: [], detect: [], classify: [], stamps: [] };
function record(total, last) {
  for (const [k, v] of [['total', total], ['detect', last.detectMs], ['classify', last.classifyMs], ['stamps', performance.now()]]) {
    timings[k].push(v);
    if (timings[k].length > window_) timings[k].shift();
  }
}
const pct = (xs, q) => {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

function show(fer, faces, source) {
  const t = timings;
  const span = t.stamps.length > 1 ? (t.stamps.at(-1) - t.stamps[0]) / 1000 : 0;
  const fps = span > 0 ? (t.stamps.length - 1) / span : 0;
  const lines = [
    `${source}; engine: int8, ${fer.kernels} kernels${fer.simd ? '' : ' (no SIMD)'}`,
    `fps ${fps.toFixed(1)}   per frame p50 ${pct(t.total, 0.5).toFixed(2)} ms, p99 ${pct(t.total, 0.99).toFixed(2)} ms`,
    `  detect p50 ${pct(t.detect, 0.5).toFixed(2)} ms   classify p50 ${pct(t.classify, 0.5).toFixed(2)} ms`,
    `${faces.length} face(s)`,
    ...faces.map((f, i) => {
      const top = Math.max(...f.probabilities);
      const id = f.track !== undefined ? ` track ${f.track}` : '';
      return `  ${i + 1}${id}: ${f.label} ${(100 * top).toFixed(0)}%  box [${f.box.map((v) => v.toFixed(0)).join(', ')}]`;
    }),
  ];
  $('stats').textContent = lines.join('\n');
}

// One frame: recognise, draw the overlay into the canvas, report.
function frame(fer, image, tracked, source) {
  const unsureBelow = $('unsure').checked ? 0.5 : undefined;
  const t0 = performance.now();
  const faces = tracked ? fer.track(image, { unsureBelow }) : fer.recognize(image, { unsureBelow });
  record(performance.now() - t0, fer.last);
  view.width = image.width;
  view.height = image.height;
  ctx.putImageData(fer.draw(), 0, 0);
  show(fer, faces, source);
  window.__fer.frames.push({ faces, width: image.width, height: image.height });
  window.__fer.lastImage = image;
  return faces;
}

async function startCamera(fer) {
  if (!navigator.mediaDevices?.getUserMedia) {
    say('The camera needs a secure page: open it from localhost or https (see docs/web.md).');
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (e) {
    const why = {
      NotAllowedError: 'Camera permission was refused. Allow it in the address bar and start again, or drop a photo below.',
      SecurityError: 'Camera permission was refused. Allow it in the address bar and start again, or drop a photo below.',
      NotFoundError: 'No camera was found. Plug one in and start again, or drop a photo below.',
      OverconstrainedError: 'No camera was found that gives video. Drop a photo below instead.',
      NotReadableError: 'The camera is in use by another program. Close it and start again.',
    }[e.name];
    say(why ?? `The camera could not start: ${e.name}: ${e.message}`);
    return;
  }
  say('');
  video.srcObject = stream;
  await video.play();
  $('start').disabled = true;
  $('stop').disabled = false;
  const [track] = stream.getVideoTracks();
  track.addEventListener('ended', () => say('The camera stopped (unplugged?). Start it again when it is back.'));
  const loop = () => {
    if (video.srcObject !== stream || track.readyState === 'ended') return;
    if (video.videoWidth > 0) {
      grab.width = video.videoWidth;
      grab.height = video.videoHeight;
      grabCtx.drawImage(video, 0, 0);
      frame(fer, grabCtx.getImageData(0, 0, grab.width, grab.height), true, 'camera');
    }
    requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);
}

function stopCamera() {
  const stream = video.srcObject;
  video.srcObject = null;
  stream?.getTracks().forEach((t) => t.stop());
  $('start').disabled = false;
  $('stop').disabled = true;
}

async function photo(fer, file) {
  if (!file || !file.type.startsWith('image/')) {
    say(`${file?.name ?? 'That'} is not an image.`);
    return;
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch (e) {
    say(`${file.name} could not be decoded as an image: ${e.message}`);
    return;
  }
  stopCamera();
  say('');
  grab.width = bitmap.width;
  grab.height = bitmap.height;
  grabCtx.drawImage(bitmap, 0, 0);
  frame(fer, grabCtx.getImageData(0, 0, bitmap.width, bitmap.height), false, file.name);
}

async function main() {
  window.__fer = { frames: [], ready: false };
  if (!hasSimd()) {
    say('This browser has no WebAssembly SIMD: the scalar build runs, several times slower.', 'note');
  }
  let fer;
  try {
    fer = await load();
  } catch (e) {
    say(`The recognizer could not load: ${e.message}`);
    return;
  }
  window.__fer.ready = true;
  window.__fer.kernels = fer.kernels;
  // For the browser test: the untracked faces of a frame, as `fer predict` gives them.
  window.__fer.recognize = (image) => fer.recognize(image);
  $('stats').textContent = `ready: int8 engine, ${fer.kernels} kernels. Start the camera or drop a photo.`;
  $('start').onclick = () => startCamera(fer);
  $('stop').onclick = stopCamera;
  $('file').onchange = (e) => photo(fer, e.target.files[0]);
  const drop = $('drop');
  drop.ondragover = (e) => {
    e.preventDefault();
    drop.classList.add('over');
  };
  drop.ondragleave = () => drop.classList.remove('over');
  drop.ondrop = (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    photo(fer, e.dataTransfer.files[0]);
  };
  // The browser test starts the (fake) camera itself: ?autostart
  if (new URLSearchParams(location.search).has('autostart')) startCamera(fer);
}

main();
