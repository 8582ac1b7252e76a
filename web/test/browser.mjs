// Shared by the browser scripts: web/ served on 127.0.0.1, and Debian's chromium headless
// (playwright-core), its fake camera playing a clip.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = fileURLToPath(new URL('..', import.meta.url));
const types = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
};

/**
 * Serves web/ and opens `page` in Chromium with `clip` as the camera (`camera: 'none'`:
 * no camera at all; `camera: 'refused'`: a camera, permission refused); runs `f(page)`.
 */
export async function withPage(clip, page, f, { camera = 'clip' } = {}) {
  // FER_SERVE_EXTRA: one more folder, under /extra/ (the accuracy bench's crops).
  const extra = process.env.FER_SERVE_EXTRA;
  const server = createServer(async (req, res) => {
    const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const [base, rel] = extra && url.startsWith('/extra/') ? [resolve(extra), url.slice(7)] : [root, url];
    const path = join(base, rel);
    if (!path.startsWith(base)) return res.writeHead(403).end();
    try {
      const body = await readFile(path.endsWith('/') ? join(path, 'index.html') : path);
      res.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const origin = `http://127.0.0.1:${server.address().port}`;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: {
      clip: [
        '--use-fake-device-for-media-stream',
        '--use-fake-ui-for-media-stream',
        `--use-file-for-fake-video-capture=${resolve(clip ?? '')}`,
      ],
      none: ['--use-fake-ui-for-media-stream'],
      refused: ['--use-fake-device-for-media-stream', '--deny-permission-prompts'],
    }[camera],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
    if (camera !== 'refused') await context.grantPermissions(['camera'], { origin });
    const tab = await context.newPage();
    const errors = [];
    tab.on('pageerror', (e) => errors.push(String(e)));
    const t0 = Date.now();
    await tab.goto(`${origin}/${page}`);
    return await f(tab, { origin, errors, t0 });
  } finally {
    await browser.close();
    server.close();
  }
}
