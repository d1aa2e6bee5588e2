// A rendition that joins a live stream while the watch page plays it, run by
// cmd/onair/e2e/ladder_browser_test.go (TestQualityMenuJoinBrowser) on a stream (STREAM)
// whose main rendition (360p) is live alone when the page opens:
//
//  1. The page plays the main rendition; the quality menu is hidden (one rendition).
//  2. The test starts a 180p output of the same clock (@start-rendition). Without a
//     reload, the menu comes to list Auto, 360p and 180p, and hls.js has both levels.
//  3. The video still plays: it goes on advancing, with no fatal error, and choosing 180p
//     in the menu plays the new rendition (the video decodes 180 lines).
//  4. The test stops the 180p output (@stop-rendition). Without a reload, the page plays
//     the main rendition again (360 lines, advancing) and the menu is hidden.
//
// Environment: ONAIR_URL, STREAM, CHROMIUM. Exit status 0 when every check passed.
import { launch } from './browser.mjs';
import { playerState as state, wait } from './watch-page.mjs';
import { ask, check, log } from './steps.mjs';

const base = process.env.ONAIR_URL;
const stream = process.env.STREAM;
if (!base || !stream) throw new Error('ONAIR_URL and STREAM must be set');

const browser = await launch();
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => log('page error:', e.message));
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') log(`console ${m.type()}:`, m.text()); });
  // Counts of the video element's events that a disruption would show.
  await page.addInitScript(() => {
    window.videoEvents = { waiting: 0, emptied: 0 };
    document.addEventListener('DOMContentLoaded', () => {
      const v = document.querySelector('[data-player] video');
      for (const name of Object.keys(window.videoEvents)) v.addEventListener(name, () => { window.videoEvents[name]++; });
    });
  });
  // What hls.js does to the SourceBuffers, and the buffered ranges after each append:
  // checked for holes, and printed if the chosen rendition does not play.
  await page.addInitScript(() => {
    window.sbLog = [];
    const t0 = performance.now();
    const rng = (b) => [...Array(b.length).keys()].map((i) => `${b.start(i).toFixed(3)}-${b.end(i).toFixed(3)}`).join(' ');
    const add = MediaSource.prototype.addSourceBuffer;
    MediaSource.prototype.addSourceBuffer = function (mime) {
      const sb = add.call(this, mime);
      const kind = mime.split('/')[0];
      const note = (what) => window.sbLog.push(`${((performance.now() - t0) / 1000).toFixed(2)} ${kind} ${what} ct=${document.querySelector('video')?.currentTime.toFixed(3)}`);
      const append = sb.appendBuffer;
      sb.appendBuffer = function (data) { append.call(this, data); note(`append ${data.byteLength}`); this.addEventListener('updateend', () => note(`-> ${rng(this.buffered)} tso=${this.timestampOffset}`), { once: true }); };
      const remove = sb.remove;
      sb.remove = function (a, b) { note(`remove ${a}-${b}`); remove.call(this, a, b); };
      const ct = sb.changeType;
      sb.changeType = function (m) { note(`changeType ${m}`); ct.call(this, m); };
      note(`added ${mime}`);
      return sb;
    };
  });
  await page.goto(`${base}/watch/${stream}`);
  await wait(page, () => document.querySelector('[data-player]').dataset.state === 'live');

  // 1. The main rendition alone.
  let s = await state(page);
  log('before:', JSON.stringify(s.menu), 'levels', s.levels, 'events', JSON.stringify(s.events));
  check(s.levels === '1' && s.menuHidden, `with one rendition the page has ${s.levels} levels, menu hidden ${s.menuHidden}`);

  // 2. The second rendition joins; the page learns of it on its own.
  await ask('@start-rendition');
  const asked = Date.now();
  await wait(page, () => {
    const p = document.querySelector('[data-player]');
    const menu = p.querySelector('select[data-quality]');
    return p.dataset.levels === '2' && !menu.hidden && menu.options.length === 3;
  }, null, 90000).catch(async (e) => {
    log('menu not updated:', JSON.stringify(await state(page)));
    throw e;
  });
  s = await state(page);
  log(`menu after ${((Date.now() - asked) / 1000).toFixed(1)} s:`, JSON.stringify(s.menu), 'ladder updates', s.ladderUpdates,
    'events', JSON.stringify(s.events), `at ${s.t.toFixed(1)} s`);
  check(s.menu[0].startsWith('Auto') && s.menu[1] === '360p' && s.menu[2] === '180p', `the menu lists ${JSON.stringify(s.menu)}`);

  // 3. Still playing, and the new rendition plays when chosen.
  const t0 = s.t;
  await wait(page, (t) => {
    const p = document.querySelector('[data-player]');
    const v = p.querySelector('video');
    return v.currentTime > t + 2 && !v.paused && (p.dataset.state === 'live' || p.dataset.state === 'behind');
  }, t0);
  s = await state(page);
  check(s.fatalErrors === '0', `${s.fatalErrors} fatal errors`);
  log(`still playing at ${s.t.toFixed(1)} s (${s.state}), events`, JSON.stringify(s.events));
  // The new hls.js instance goes on where the old one's buffer ends: a hole in the video
  // buffer would freeze the picture while the audio plays on.
  const holes = (await page.evaluate(() => window.sbLog)).filter((l) => / video -> [0-9.]+-[0-9.]+ [0-9.]+-/.test(l));
  check(holes.length === 0, `the video buffer had holes after the hand-over: ${holes.join('; ')}`);
  const low = await page.evaluate(() => [...document.querySelector('select[data-quality]').options].find((o) => o.textContent === '180p').value);
  await page.selectOption('select[data-quality]', low);
  await wait(page, (lvl) => {
    const p = document.querySelector('[data-player]');
    const v = p.querySelector('video');
    return p.dataset.level === lvl && v.videoHeight === 180 && !v.paused;
  }, low).catch(async (e) => {
    log('180p not played:', JSON.stringify(await state(page)));
    log('buffered:', await page.evaluate(() => {
      const b = document.querySelector('[data-player] video').buffered;
      return [...Array(b.length).keys()].map((i) => `${b.start(i).toFixed(2)}-${b.end(i).toFixed(2)}`).join(' ');
    }));
    log('source buffers:\n' + (await page.evaluate(() => window.sbLog)).slice(-400).join('\n'));
    throw e;
  });
  s = await state(page);
  log(`180p chosen: level ${s.level}, ${s.height} lines at ${s.t.toFixed(1)} s, ${s.latency} s behind live, events`, JSON.stringify(s.events));

  // 4. The chosen rendition leaves.
  await ask('@stop-rendition');
  const stopped = Date.now();
  await wait(page, () => {
    const p = document.querySelector('[data-player]');
    const v = p.querySelector('video');
    return p.dataset.levels === '1' && v.videoHeight === 360 && !v.paused && (p.dataset.state === 'live' || p.dataset.state === 'behind');
  }).catch(async (e) => {
    log('360p not back:', JSON.stringify(await state(page)));
    throw e;
  });
  const t1 = (await state(page)).t;
  await wait(page, (t) => document.querySelector('[data-player] video').currentTime > t + 2, t1);
  s = await state(page);
  check(s.fatalErrors === '0' && s.menuHidden, `after the rendition left: ${s.fatalErrors} fatal errors, menu hidden ${s.menuHidden}`);
  log(`360p again ${((Date.now() - stopped) / 1000).toFixed(1)} s after the stop, at ${s.t.toFixed(1)} s, ${s.latency} s behind live (${s.state}), events`, JSON.stringify(s.events));
} finally {
  await browser.close();
}
process.exit(0);
