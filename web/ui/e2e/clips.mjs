// Clips in Chromium, run by cmd/onair/e2e/clips_browser_test.go while ROOM is live: bob
// signs in, clips the last 8 s from the room page's Clip form, lands on the clip's page,
// which plays at once (its time advances), and finds the clip, with a delete button, in
// the room's list of clips.
//
// Environment: ONAIR_URL, ROOM (the room's page path), CHROMIUM.
import { launch } from './browser.mjs';
import { log, check } from './steps.mjs';

const base = process.env.ONAIR_URL;
const roomPath = process.env.ROOM;
if (!base || !roomPath) throw new Error('ONAIR_URL and ROOM must be set');

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  await page.goto(`${base}/login?next=${encodeURIComponent(roomPath)}`);
  await page.fill('#login', 'bob');
  await page.fill('#password', 'correct horse battery');
  await Promise.all([page.waitForURL((u) => u.pathname === roomPath), page.click('button[type=submit]')]);

  await page.fill('[data-clip-form] input[name=seconds]', '8');
  await Promise.all([page.waitForURL((u) => u.pathname.startsWith('/clips/'), { timeout: 30000 }), page.click('[data-clip]')]);
  const clipPath = new URL(page.url()).pathname;
  log('clip page', clipPath);
  // It plays at once: its time moves past a second.
  await page.waitForFunction(() => {
    const v = document.querySelector('video');
    return v && !v.paused && v.currentTime > 1;
  }, null, { timeout: 20000, polling: 100 });
  const t = await page.evaluate(() => document.querySelector('video').currentTime);
  log('clip playing at', t.toFixed(2));
  check(/Clip by @bob/.test(await page.textContent('main')), 'the clip page names its maker');

  // The room page lists it, deletable by its maker.
  await page.goto(`${base}${roomPath}`);
  const id = clipPath.split('/').pop();
  await page.waitForSelector(`[data-clips] li[data-clip="${id}"] button`, { timeout: 15000 });
  log('listed on the room page with a delete button');
} finally {
  await browser.close();
}
