// fer against face-api.js in the same headless Chromium, on the same frames of a clip:
//   node web/test/bench.mjs CLIP.y4m [FRAMES]   -> JSON on stdout
// or, with FER_SERVE_EXTRA=DIR holding crops.bin, both classifiers' accuracy on its crops:
//   FER_SERVE_EXTRA=DIR node web/test/bench.mjs CLIP.y4m crops
import { withPage } from './browser.mjs';

const [clip, frames = '60'] = process.argv.slice(2);
const query = frames === 'crops' ? 'crops=/extra/crops.bin' : `frames=${frames}`;
await withPage(clip, `bench.html?${query}`, async (page, { errors }) => {
  await page.waitForFunction(() => window.__bench, null, { timeout: 600_000 });
  const bench = await page.evaluate(() => window.__bench);
  console.log(JSON.stringify({ errors, ...bench }, null, 2));
});
