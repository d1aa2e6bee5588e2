// Uploads in Chromium, run by cmd/onair/e2e/uploads_browser_test.go: ann uploads VIDEO
// from her room's dashboard; a reload interrupts it half-way, choosing the file again
// resumes it (the parts already stored are not sent again); the link to the new past
// broadcast opens a replay that plays. Then TEXT, a text file named .mp4, is refused with
// the reason shown.
//
// Environment: ONAIR_URL, ROOM (the room's slug), VIDEO, TEXT, CHROMIUM.
import { statSync } from 'node:fs';
import { launch } from './browser.mjs';
import { log, check } from './steps.mjs';

const base = process.env.ONAIR_URL;
const { ROOM: room, VIDEO: video, TEXT: text } = process.env;
if (!base || !room || !video || !text) throw new Error('ONAIR_URL, ROOM, VIDEO and TEXT must be set');
const size = statSync(video).size;

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const dash = `/dashboard/${room}`;
  await page.goto(`${base}/login?next=${encodeURIComponent(dash)}`);
  await page.fill('#login', 'ann');
  await page.fill('#password', 'correct horse battery');
  await Promise.all([page.waitForURL((u) => u.pathname === dash), page.click('button[type=submit]')]);

  // Start, and reload once a third is sent.
  await page.setInputFiles('#upload-file', video);
  await page.fill('#upload-title', 'Conference talk');
  await page.click('[data-upload-form] button[type=submit]');
  await page.waitForFunction((n) => Number(document.querySelector('[data-upload-progress]')?.dataset.sent || 0) > n / 3,
    size, { timeout: 60000, polling: 20 });
  log('a third sent; reloading');
  await page.reload();

  // Choosing the same file again resumes: the server says which parts it has.
  await page.setInputFiles('#upload-file', video);
  await page.fill('#upload-title', 'Conference talk');
  const started = Date.now();
  await page.click('[data-upload-form] button[type=submit]');
  await page.waitForSelector('[data-upload-resumed]:not([hidden])', { timeout: 15000 });
  const resumed = await page.textContent('[data-upload-resumed]');
  log('resumed:', resumed);
  const [, had, total] = resumed.match(/(\d+) of (\d+) parts/) || [];
  check(Number(had) > 0 && Number(had) < Number(total), `resumed with ${had} of ${total} parts stored`);
  await page.waitForSelector('[data-upload-link]', { timeout: 120000 });
  log(`processed ${((Date.now() - started) / 1000).toFixed(1)} s after resuming`);
  await page.waitForSelector('[data-dash-broadcasts] a[href^="/replay/"]', { timeout: 15000 });
  log('listed among the past broadcasts');

  // The replay plays.
  await Promise.all([page.waitForURL((u) => u.pathname.startsWith('/replay/')), page.click('[data-upload-link]')]);
  check(/Conference talk/.test(await page.textContent('main')), 'the replay page shows the title');
  await page.waitForFunction(() => {
    const v = document.querySelector('video');
    return v && !v.paused && v.currentTime > 2;
  }, null, { timeout: 30000, polling: 100 });
  log('the replay plays at', (await page.evaluate(() => document.querySelector('video').currentTime)).toFixed(2));

  // A text file with a video's name is refused, and says why.
  await page.goto(`${base}${dash}`);
  await page.setInputFiles('#upload-file', text);
  await page.click('[data-upload-form] button[type=submit]');
  await page.waitForSelector('[data-upload-error][data-refused="1"]', { timeout: 60000 });
  const why = await page.textContent('[data-upload-error]');
  log('refused:', why);
  check(/refused/.test(why) && /not an MP4/.test(why), 'the refusal says the file is not an MP4');
} finally {
  await browser.close();
}
