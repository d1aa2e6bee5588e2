// Embeds and sharing in Chromium, run by cmd/onair/e2e/embed_browser_test.go:
//
//  1. A page of another origin (OTHER_URL, a second server) frames /embed/<room> of an
//     offline room: the embed renders in the iframe and plays the room's latest recording,
//     stored by the local storage backend.
//     The chat embed, framed beside it, connects to the room's chat.
//  2. A page of that other origin plays the same replay with its own hls.js: the local
//     backend's /storage/ answers it (CORS), as S3 would.
//  3. The replay page's share button gives a link to the moment being watched (?t=), and
//     that link opens the replay there; a ?t= link seeks on load. The room page's share
//     button gives the room's address.
//
// Environment: ONAIR_URL, OTHER_URL, ROOM (the room's page path), REPLAY (the broadcast
// id), CHROMIUM. Lines are JSON, one per phase; exit status 0 when every check passed.
import { launch } from './browser.mjs';

const base = process.env.ONAIR_URL;
const other = process.env.OTHER_URL;
const roomPath = process.env.ROOM;
const replay = process.env.REPLAY;
if (!base || !other || !roomPath || !replay) throw new Error('ONAIR_URL, OTHER_URL, ROOM and REPLAY must be set');

function check(ok, message) {
  if (!ok) throw new Error(`check failed: ${message}`);
}

const playing = (min) => {
  const v = document.querySelector('video');
  return v && v.currentTime > min && !v.paused;
};

const browser = await launch();
try {
  const context = await browser.newContext();
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });

  // 1. The embed in an iframe of another origin.
  const host = await context.newPage();
  const refused = [];
  host.on('console', (m) => { if (/refused|blocked/i.test(m.text())) refused.push(m.text()); });
  await host.goto(`${other}/embed.html`);
  const frameEl = await host.waitForSelector('iframe[src$="/embed/ann-embed"]');
  const frame = await frameEl.contentFrame();
  check(frame, 'the iframe has no frame');
  const chatFrame = await (await host.waitForSelector('iframe[src$="/chat"]')).contentFrame();
  await chatFrame.waitForFunction(() => document.querySelector('[data-chat]').dataset.chatState === 'connected', null, { timeout: 15000, polling: 200 });
  await frame.waitForFunction(playing, 1, { timeout: 30000, polling: 200 });
  const embed = await frame.evaluate(() => ({
    origin: location.origin, state: document.querySelector('[data-player]').dataset.state,
    replay: document.querySelector('[data-embed]').dataset.replay || '', header: !!document.querySelector('header.site'),
  }));
  const hostOrigin = await host.evaluate(() => location.origin);
  console.log(JSON.stringify({ phase: 'embed', host: hostOrigin, ...embed }));
  check(embed.origin === new URL(base).origin && hostOrigin !== embed.origin, 'the embed is not on another origin than its host page');
  check(embed.replay === replay, `the embed plays ${embed.replay}, not the latest broadcast ${replay}`);
  check(!embed.header, 'the embed shows the site header');
  check(refused.length === 0, `refused: ${refused.join('; ')}`);
  await host.close();

  // 2. Another origin's hls.js plays the local backend's replay.
  const ext = await context.newPage();
  await ext.goto(`${other}/player.html`);
  await ext.waitForFunction(() => {
    const v = document.querySelector('video');
    return (v.currentTime > 1 && !v.paused) || window.fatal;
  }, null, { timeout: 30000, polling: 200 });
  const extState = await ext.evaluate(() => ({ time: document.querySelector('video').currentTime, fatal: window.fatal || '' }));
  console.log(JSON.stringify({ phase: 'cross-origin hls.js', ...extState }));
  check(!extState.fatal, `hls.js on another origin: ${extState.fatal}`);
  await ext.close();

  // 3. Share links.
  const page = await context.newPage();
  await page.goto(`${base}/replay/${replay}?t=6`);
  await page.waitForFunction(() => document.querySelector('video').currentTime > 0, null, { timeout: 30000, polling: 50 });
  const startedAt = await page.evaluate(() => document.querySelector('video').currentTime);
  check(startedAt >= 5, `?t=6 started the replay at ${startedAt} s`);
  await page.waitForFunction(playing, 7.5, { timeout: 30000, polling: 100 });
  await page.click('[data-share]');
  await page.waitForFunction(() => document.querySelector('[data-share-note]').textContent !== '', null, { timeout: 5000 });
  const shared = await page.evaluate(() => ({
    link: document.querySelector('[data-share-url]').value, note: document.querySelector('[data-share-note]').textContent,
  }));
  const copied = await page.evaluate(() => navigator.clipboard.readText().catch((e) => `error: ${e}`));
  const u = new URL(shared.link);
  const t = Number(u.searchParams.get('t'));
  console.log(JSON.stringify({ phase: 'replay share', started_at: startedAt, ...shared, copied }));
  check(u.origin === new URL(base).origin && u.pathname === `/replay/${replay}`, `shared link ${shared.link}`);
  check(t >= 7, `shared link's time ${t}, the replay was past 7.5 s`);
  check(copied === shared.link, `clipboard holds ${copied}`);

  // The shared link opens at its moment: no earlier second is played first.
  const follow = await context.newPage();
  await follow.goto(shared.link);
  await follow.waitForFunction(() => document.querySelector('video').currentTime > 0, null, { timeout: 30000, polling: 50 });
  const first = await follow.evaluate(() => document.querySelector('video').currentTime);
  console.log(JSON.stringify({ phase: 'shared link', t, first_time: first }));
  check(first >= t - 1, `the shared link started at ${first} s, not ${t}`);
  await follow.close();

  await page.goto(`${base}${roomPath}`);
  await page.click('[data-share]');
  await page.waitForFunction(() => document.querySelector('[data-share-url]').value !== '', null, { timeout: 5000 });
  const roomLink = await page.evaluate(() => document.querySelector('[data-share-url]').value);
  console.log(JSON.stringify({ phase: 'room share', link: roomLink }));
  check(roomLink === `${base}${roomPath}`, `room page shares ${roomLink}`);
} finally {
  await browser.close();
}
process.exit(0);
