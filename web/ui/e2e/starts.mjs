// "From the start" and live previews in Chromium, run by cmd/onair/e2e/starts_browser_test.go
// on a recorded room (ROOM, its slug) live for longer than the server's DVR window
// (DVR_WINDOW seconds):
//
//  1. The room page offers "From the start"; clicking it plays the run's first second (the
//     start of the EVENT playlist, further from live than the DVR window reaches); "Live"
//     goes back to the LL playlist at the live edge, by hls.js's own latency.
//  2. The home page's card of the live room plays a muted preview while the pointer is
//     over it, and drops it when the pointer leaves; keyboard focus does the same; with
//     prefers-reduced-motion nothing plays.
//
// Environment: ONAIR_URL, ROOM, DVR_WINDOW, CHROMIUM. Exit status 0 when every check passed.
import { launch } from './browser.mjs';
import { check, log } from './steps.mjs';

const base = process.env.ONAIR_URL;
const room = process.env.ROOM;
const dvrWindow = Number(process.env.DVR_WINDOW);
if (!base || !room || !dvrWindow) throw new Error('ONAIR_URL, ROOM and DVR_WINDOW must be set');

const wait = (page, fn, arg, timeout = 20000) => page.waitForFunction(fn, arg, { timeout, polling: 100 });
const player = (page) => page.evaluate(() => {
  const p = document.querySelector('[data-player]');
  const v = p.querySelector('video');
  return { ...p.dataset, t: v.currentTime, seekable: v.seekable.length ? [v.seekable.start(0), v.seekable.end(0)] : [] };
});

const browser = await launch();
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => log('page error:', e.message));

  // 1. From the start (the run is longer than the DVR window: the test waited for that).
  await page.goto(`${base}/rooms/${room}`);
  await wait(page, () => document.querySelector('[data-player]').dataset.state === 'live');
  check(await page.isVisible('[data-act=start]'), 'the room page offers no "From the start"');
  await page.evaluate(() => {
    const p = document.querySelector('[data-player]');
    const v = p.querySelector('video');
    // Where the player is when it starts playing the broadcast from its start.
    v.addEventListener('playing', () => {
      if (p.dataset.source === 'start' && window.startedAt === undefined) window.startedAt = v.currentTime;
    });
  });
  await page.click('[data-act=start]');
  await wait(page, () => window.startedAt !== undefined && document.querySelector('[data-player] video').currentTime > window.startedAt + 1);
  const from = await player(page);
  const startedAt = await page.evaluate(() => window.startedAt);
  log(`from the start: began at ${startedAt.toFixed(2)} s of ${JSON.stringify(from.seekable)}, ${from.latency} s behind live`);
  check(from.source === 'start', `the player plays ${from.source}, not the start playlist`);
  check(from.seekable.length === 2 && startedAt - from.seekable[0] < 1, `from the start began ${startedAt} s into the run`);
  check(from.seekable[1] - startedAt > dvrWindow, 'from the start began within the DVR window');
  check(Number(from.latency) > dvrWindow, `from the start is ${from.latency} s behind live`);
  check(!(await page.isVisible('[data-act=start]')) && await page.isEnabled('[data-act=live]'), 'from the start: Live is not offered');

  await page.click('[data-act=live]');
  await wait(page, () => {
    const d = document.querySelector('[data-player]').dataset;
    return d.source === 'live' && d.state === 'live' && Number(d.latency) < 3;
  });
  const back = await player(page);
  log(`back to live: ${back.latency} s behind live`);
  check(await page.isVisible('[data-act=start]'), '"From the start" is not offered again at live');
  check(Number(back.fatalErrors) === 0, `fatal player errors: ${back.lastError}`);
  await page.close();

  // 2. The home page's preview, by pointer and by keyboard.
  const home = await browser.newPage();
  home.on('pageerror', (e) => log('home page error:', e.message));
  await home.goto(base);
  const card = `[data-live-list] [data-preview="/live/${room}/index.m3u8"]`;
  const playing = async (what) => {
    const t = await (await wait(home, (sel) => {
      const v = document.querySelector(`${sel} video`);
      return v && v.muted && !v.paused && v.currentTime > 0.2 && v.currentTime;
    }, card)).jsonValue();
    await wait(home, ([sel, t0]) => document.querySelector(`${sel} video`)?.currentTime > t0 + 1, [card, t]);
    log(`${what}: the preview plays, muted`);
  };
  const stopped = (what) => wait(home, (sel) => !document.querySelector(`${sel} video`) && !document.querySelector('video'), card)
    .then(() => log(`${what}: the preview is gone`));

  await home.hover(card);
  await playing('hover');
  await home.mouse.move(1, 1);
  await stopped('pointer left');

  await home.focus(`${card} a`);
  await playing('focus');
  await home.evaluate(() => document.activeElement.blur());
  await stopped('focus left');

  // Previews start on the pointer's arrival, at once: none means none.
  await home.emulateMedia({ reducedMotion: 'reduce' });
  await home.hover(card);
  check(await home.evaluate(() => !document.querySelector('video')), 'a preview plays despite prefers-reduced-motion');
  log('reduced motion: no preview');
} finally {
  await browser.close();
}
process.exit(0);
