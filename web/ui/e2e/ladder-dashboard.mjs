// The room dashboard's live health lists the quality ladder, run by
// cmd/onair/e2e/ladder_browser_test.go on a room (ROOM) live with two renditions: the
// main one at 640x360 and 180p at 320x180. The owner's session is SESSION.
//
// Environment: ONAIR_URL, ROOM, SESSION, CHROMIUM. Exit status 0 when every check passed.
import { launch } from './browser.mjs';
import { check, log } from './steps.mjs';

const base = process.env.ONAIR_URL;
const room = process.env.ROOM;
const session = process.env.SESSION;
if (!base || !room || !session) throw new Error('ONAIR_URL, ROOM and SESSION must be set');

const browser = await launch();
try {
  const ctx = await browser.newContext();
  await ctx.addCookies([{ name: 'onair_session', value: session, url: base, httpOnly: true, sameSite: 'Lax' }]);
  const page = await ctx.newPage();
  page.on('pageerror', (e) => log('page error:', e.message));
  await page.goto(`${base}/dashboard/${room}`);
  // Two refreshes of the health give the rates.
  await page.waitForFunction(() => {
    const rows = document.querySelectorAll('[data-health-renditions] tr[data-rendition]');
    return rows.length === 2 && [...rows].every((r) => !r.cells[2].textContent.startsWith('0'));
  }, null, { timeout: 30000, polling: 200 });
  const rows = await page.evaluate(() => [...document.querySelectorAll('[data-health-renditions] tr[data-rendition]')]
    .map((tr) => [...tr.cells].map((c) => c.textContent)));
  log('ladder:', JSON.stringify(rows));
  check(rows[0][0] === 'main' && rows[0][1] === '640×360' && rows[0][4] === 'H264', `the main rendition's row: ${rows[0]}`);
  check(rows[1][0] === '180p' && rows[1][1] === '320×180' && rows[1][4] === 'H264', `the 180p row: ${rows[1]}`);
  for (const r of rows) check(/fps$/.test(r[3]) && parseFloat(r[3]) > 20, `frame rate ${r[3]}`);
  check(await page.isVisible('[data-health-renditions]'), 'the ladder is not shown');
} finally {
  await browser.close();
}
process.exit(0);
