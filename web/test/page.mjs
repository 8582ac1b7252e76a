// The live page in a real browser: Debian's chromium, headless, driven by playwright-core,
// its camera a clip played by Chromium's fake capture device.
//   node web/test/page.mjs CLIP.y4m OUT_DIR [FRAMES]
// Serves web/ on 127.0.0.1, opens index.html?autostart, waits for FRAMES frames, then
// writes OUT_DIR/result.json (load time, kernels, latency, the last frame's faces as the
// page reported them and as recognize() gives them, that frame's pixels and the canvas's,
// base64 RGBA) and OUT_DIR/page.png (a screenshot).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { withPage } from './browser.mjs';

const [clip, out, framesArg] = process.argv.slice(2);
const frames = Number(framesArg ?? 30);

await withPage(clip, 'index.html?autostart', async (page, { errors, t0 }) => {
  await page.waitForFunction(() => window.__fer?.ready, null, { timeout: 30_000 });
  const loadMs = Date.now() - t0;
  await page.waitForFunction((n) => window.__fer.frames.length >= n, frames, { timeout: 120_000 });
  const result = await page.evaluate(() => {
    const b64 = (bytes) => {
      let s = '';
      for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      return btoa(s);
    };
    const f = window.__fer;
    const image = f.lastImage;
    const shown = f.frames.at(-1);
    const canvas = document.getElementById('view');
    const drawn = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
    return {
      kernels: f.kernels,
      frames: f.frames.length,
      stats: document.getElementById('stats').textContent,
      message: document.getElementById('message').textContent,
      width: image.width,
      height: image.height,
      tracked: shown.faces,
      faces: f.recognize(image),
      frame: b64(new Uint8Array(image.data.buffer)),
      canvas: b64(new Uint8Array(drawn.data.buffer)),
    };
  });
  await page.screenshot({ path: join(out, 'page.png') });
  await writeFile(join(out, 'result.json'), JSON.stringify({ loadMs, errors, ...result }));
});
