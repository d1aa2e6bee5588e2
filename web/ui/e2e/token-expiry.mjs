// An external player with a URL token stops when the token expires: hls.js, on a page of
// another origin (as an embed on a streamer's site would be), plays a private room's live
// stream from a URL carrying a playback token, and once the token has expired the
// server refuses the playlists and parts it asks for next, and the player gives up (a
// fatal hls.js error) or at least stops advancing. Run by cmd/onair/e2e/private_browser_test.go.
//
// Environment: HLS_URL (the multivariant playlist with ?token=), EXPIRES_MS (when the
// token expires, Unix milliseconds), HLS_JS (hls.min.js), CHROMIUM. Prints one JSON line
// with what happened; exit status 0 when every check passed.
import { launch } from './browser.mjs';

const src = process.env.HLS_URL;
const expires = Number(process.env.EXPIRES_MS);
const hlsJS = process.env.HLS_JS;
if (!src || !expires || !hlsJS) throw new Error('HLS_URL, EXPIRES_MS and HLS_JS must be set');

function check(ok, message) {
  if (!ok) throw new Error(`check failed: ${message}`);
}

const browser = await launch();
try {
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
  console.log(JSON.stringify({ played_at: playedAt, expires, stopped, position }));
  check(stopped.at >= expires - 1000, `the player stopped ${expires - stopped.at} ms before the token expired (${JSON.stringify(stopped)})`);
} finally {
  await browser.close();
}
