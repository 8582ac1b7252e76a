// The page's messages when the camera cannot start: no camera at all, and permission
// refused. Prints {none, refused}: the message each case shows.
import { withPage } from './browser.mjs';

const shown = {};
for (const camera of ['none', 'refused']) {
  shown[camera] = await withPage(null, 'index.html?autostart', async (page, { errors }) => {
    await page.waitForFunction(() => document.getElementById('message').textContent !== '', null, { timeout: 30_000 });
    return { message: await page.textContent('#message'), errors };
  }, { camera });
}
console.log(JSON.stringify(shown));
