// A private room in Chromium, run by cmd/onair/e2e/private_browser_test.go:
//
//  1. An invited viewer logs in and opens the room's page: it plays, on the playback
//     cookie the page asked for, which its JavaScript cannot read.
//  2. An external player with a URL token stops when the token expires: hls.js, on a page
//     of another origin (as an embed on a streamer's site would be), plays the room from a
//     URL carrying a token, and once the token has expired the server refuses the
//     playlists and parts it asks for next, and the player gives up (a fatal hls.js error)
//     or at least stops advancing.
//
// Environment: ONAIR_URL, PAGE (the room's page path), LOGIN and PASSWORD (the invited
// viewer), HLS_JS (hls.min.js), CHROMIUM. The token is asked for once the page phase is
// done, so that its short life is not spent on it: the script prints "@token", and the Go
// test answers "<HLS URL with ?token=> <expiry in Unix milliseconds>". Every other line
// is JSON, one per phase; exit status 0 when every check passed.
import { createInterface } from 'node:readline';
import { launch } from './browser.mjs';

const base = process.env.ONAIR_URL;
const pagePath = process.env.PAGE;
const hlsJS = process.env.HLS_JS;
if (!base || !pagePath || !hlsJS) throw new Error('ONAIR_URL, PAGE and HLS_JS must be set');
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

function check(ok, message) {
  if (!ok) throw new Error(`check failed: ${message}`);
}

const browser = await launch();
try {
  // 1. The invited viewer on the room's page.
  const viewer = await browser.newPage();
  await viewer.goto(`${base}/login?next=${encodeURIComponent(pagePath)}`);
  await viewer.fill('#login', process.env.LOGIN);
  await viewer.fill('#password', process.env.PASSWORD);
  await Promise.all([viewer.waitForURL((u) => u.pathname === pagePath), viewer.click('button[type=submit]')]);
  await viewer.waitForFunction(() => {
    const v = document.querySelector('[data-player] video');
    return v && v.currentTime > 2 && !v.paused;
  }, null, { timeout: 30000, polling: 200 });
  const seen = await viewer.evaluate(() => ({ cookies: document.cookie, state: document.querySelector('[data-player]').dataset.state }));
  check(!seen.cookies.includes('onair_play'), 'page JavaScript reads the playback cookie');
  const jar = await viewer.context().cookies(`${base}${pagePath.replace('/watch/', '/live/')}/index.m3u8`);
  const play = jar.find((c) => c.name === 'onair_play');
  check(play && play.httpOnly && play.sameSite === 'Strict', `playback cookie ${JSON.stringify(play)}`);
  console.log(JSON.stringify({ phase: 'page', state: seen.state, cookie_path: play.path }));
  await viewer.close();

  // 2. An external player with a URL token.
  console.log('@token');
  const { value } = await lines.next();
  await lines.return(); // nothing more comes: let the process end when done
  const [src, exp] = String(value).trim().split(' ');
  const expires = Number(exp);
  check(src && expires, `the test answered ${JSON.stringify(value)}`);
  const page = await browser.newPage();
  await page.setContent('<!doctype html><title>embed</title><video muted playsinline></video>');
  await page.addScriptTag({ path: hlsJS });
  await page.evaluate((url) => {
    const v = document.querySelector('video');
    const s = { fatal: '', fatalAt: 0, advancedAt: Date.now(), last: 0 };
    window.playerState = s;
    const hls = new window.Hls({ lowLatencyMode: true, enableWorker: false });
    hls.on(window.Hls.Events.ERROR, (_, d) => {
      if (d.fatal && !s.fatal) {
        s.fatal = `${d.type}/${d.details}/${d.response ? d.response.code : ''}`;
        s.fatalAt = Date.now();
      }
    });
    hls.on(window.Hls.Events.MANIFEST_PARSED, () => { v.play().catch(() => {}); });
    hls.loadSource(url);
    hls.attachMedia(v);
    setInterval(() => {
      if (v.currentTime > s.last + 0.05) {
        s.last = v.currentTime;
        s.advancedAt = Date.now();
      }
    }, 200);
  }, src);

  await page.waitForFunction(() => document.querySelector('video').currentTime > 2 && !window.playerState.fatal,
    null, { timeout: 30000, polling: 200 });
  const playedAt = Date.now();
  check(playedAt < expires, `the player started only ${playedAt - expires} ms after the token expired`);

  // Stopped: a fatal error, or no progress for 5 s, after the expiry.
  const handle = await page.waitForFunction((exp) => {
    const s = window.playerState;
    const now = Date.now();
    if (s.fatal) return { how: 'fatal', detail: s.fatal, at: s.fatalAt };
    if (now > exp && now - s.advancedAt > 5000) return { how: 'stalled', at: s.advancedAt };
    return false;
  }, expires, { timeout: 90000, polling: 250 });
  const stopped = await handle.jsonValue();
  const position = await page.evaluate(() => document.querySelector('video').currentTime);
  console.log(JSON.stringify({ phase: 'url token', played_at: playedAt, expires, stopped, position }));
  check(stopped.at >= expires - 1000, `the player stopped ${expires - stopped.at} ms before the token expired (${JSON.stringify(stopped)})`);
} finally {
  await browser.close();
}
// The Go side keeps stdin open until the script exits: do not wait for it.
process.exit(0);
