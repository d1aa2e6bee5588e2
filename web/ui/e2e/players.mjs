// Plays onair's live stream in Debian's Chromium with the players people embed: hls.js,
// Shaka Player and video.js (its VHS engine), each in low-latency mode, in pages of one
// browser side by side, and checks what a viewer would notice (run by
// cmd/onair/e2e/players_test.go):
//   - each plays at most MAX_BEHIND seconds behind live (by the playlist's
//     PROGRAM-DATE-TIME, which onair stamps at ingest) without a stall, for WATCH seconds;
//   - hls.js rewinds 60 s and comes back to live;
//   - the publisher drops its connection and comes back after a few seconds ("@reconnect"):
//     no player stops for much longer than the gap, and each plays on;
//   - "from the start": hls.js plays the first second of the run from start.m3u8, which
//     has been live for longer than the DVR window ("@fromstart" waits for that).
//
// Protocol on stdout/stdin as steps.mjs describes. Environment: ONAIR_HLS (the
// multivariant playlist's URL), WATCH (seconds), MAX_BEHIND (seconds), GAP (seconds).
import { createRequire } from 'node:module';
import { launch } from './browser.mjs';
import { ask, check, log } from './steps.mjs';

const require = createRequire(import.meta.url);
const index = process.env.ONAIR_HLS;
const watch = Number(process.env.WATCH || 60);
const maxBehind = Number(process.env.MAX_BEHIND || 1.5);
const gap = Number(process.env.GAP || 3);
if (!index) throw new Error('ONAIR_HLS is not set');

const libs = {
  hlsjs: [require.resolve('hls.js/dist/hls.min.js')],
  shaka: [require.resolve('shaka-player/dist/shaka-player.compiled.js')],
  videojs: [require.resolve('video.js/dist/video.min.js')],
};

// In the page: start the player on url, and keep figures in window.stats: the playback
// position and how far behind live it is (now minus the PROGRAM-DATE-TIME of what
// shows), and stalls (the position not moving for 300 ms or more while playing).
function startPlayer([kind, url]) {
  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  video.playsInline = true;
  document.body.append(video);
  const stats = { kind, behind: [], stalls: [], errors: [], started: 0, position: 0 };
  window.stats = stats;
  let date = () => null;
  if (kind === 'hlsjs') {
    // As onair's own player does: catch up with live after a stall instead of drifting.
    const hls = new window.Hls({ lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.5, startPosition: window.startAt ?? -1 });
    hls.on(window.Hls.Events.ERROR, (_, d) => { if (d.fatal) stats.errors.push(`${d.type}: ${d.details}`); });
    hls.loadSource(url);
    hls.attachMedia(video);
    window.hls = hls;
    date = () => hls.playingDate;
  } else if (kind === 'shaka') {
    window.shaka.polyfill.installAll();
    const player = new window.shaka.Player();
    player.configure({ streaming: { lowLatencyMode: true, liveSync: { enabled: true, maxPlaybackRate: 1.5 } } });
    player.addEventListener('error', (e) => stats.errors.push(`shaka ${e.detail.code}`));
    player.attach(video).then(() => player.load(url)).catch((e) => stats.errors.push(`shaka load ${e.code}`));
    window.player = player;
    date = () => player.getPlayheadTimeAsDate();
  } else {
    video.className = 'video-js';
    const player = window.videojs(video, { autoplay: 'muted', muted: true, liveui: true });
    player.on('error', () => stats.errors.push(`video.js ${player.error()?.code}: ${player.error()?.message}`));
    player.src({ src: url, type: 'application/x-mpegURL' });
    window.player = player;
    let known = null;
    date = () => {
      const vhs = player.tech(true).vhs;
      if (vhs) vhs.convertToProgramTime(player.currentTime(), (err, t) => { if (!err) known = new Date(t.programDateTime); });
      return known;
    };
  }
  let last = -1, stuckSince = 0;
  setInterval(() => {
    const now = performance.now();
    const t = video.currentTime;
    if (video.error) stats.errors.push(`media error ${video.error.code}: ${video.error.message}`);
    if (!stats.started && t > 0 && !video.paused) stats.started = Date.now();
    if (stats.started && !video.paused && !video.seeking) {
      if (t === last) {
        stuckSince ||= now;
      } else {
        if (stuckSince && now - stuckSince >= 300) stats.stalls.push({ at: Date.now(), ms: Math.round(now - stuckSince) });
        stuckSince = 0;
      }
    }
    last = t;
    stats.position = t;
    stats.stuck = stuckSince ? Math.round(now - stuckSince) : 0;
    const d = date();
    if (stats.started && d) stats.behind.push([Date.now(), (Date.now() - d.getTime()) / 1000]);
    if (stats.behind.length > 2000) stats.behind.splice(0, 1000);
  }, 50);
}

const browser = await launch();
const pages = {};
try {
  for (const kind of ['hlsjs', 'shaka', 'videojs']) {
    const page = await browser.newPage();
    page.on('pageerror', (e) => log(kind, 'page error:', e.message));
    await page.setContent('<!doctype html><html><body></body></html>');
    for (const path of libs[kind]) await page.addScriptTag({ path });
    if (kind === 'videojs') await page.addStyleTag({ path: require.resolve('video.js/dist/video-js.min.css') });
    await page.evaluate(startPlayer, [kind, index]);
    pages[kind] = page;
  }
  const stats = async (kind) => pages[kind].evaluate(() => window.stats);
  const all = async () => Object.fromEntries(await Promise.all(Object.keys(pages).map(async (k) => [k, await stats(k)])));

  // Every player starts.
  const deadline = Date.now() + 20000;
  for (;;) {
    const s = await all();
    for (const [k, v] of Object.entries(s)) check(v.errors.length === 0, `${k}: ${v.errors.join('; ')}`);
    if (Object.values(s).every((v) => v.started)) break;
    check(Date.now() < deadline, `players not all playing after 20 s: ${JSON.stringify(Object.fromEntries(Object.entries(s).map(([k, v]) => [k, v.position])))}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  log('all three players play');
  // Let each settle at its distance from live, then watch.
  await new Promise((r) => setTimeout(r, 5000));
  const from = Date.now();
  await new Promise((r) => setTimeout(r, watch * 1000));
  for (const [k, v] of Object.entries(await all())) {
    const behind = v.behind.filter(([at]) => at >= from).map(([, b]) => b);
    check(behind.length > 0, `${k}: no position while watching`);
    const sorted = [...behind].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    const worst = sorted[sorted.length - 1];
    const stalls = v.stalls.filter((s) => s.at >= from);
    log(`${k}: behind live median ${median.toFixed(2)} s, at most ${worst.toFixed(2)} s; stalls ${JSON.stringify(stalls)}`);
    console.log(`@figure ${k} behind_median=${median.toFixed(3)} behind_max=${worst.toFixed(3)} stalls=${stalls.length}`);
    check(v.errors.length === 0, `${k}: ${v.errors.join('; ')}`);
    check(worst <= maxBehind, `${k} was ${worst.toFixed(2)} s behind live, more than ${maxBehind} s`);
    check(stalls.length === 0, `${k} stalled: ${JSON.stringify(stalls)}`);
  }

  // hls.js rewinds a minute and plays there, then goes back to live.
  const h = pages.hlsjs;
  const before = await h.evaluate(() => document.querySelector('video').currentTime);
  await h.evaluate(() => { document.querySelector('video').currentTime -= 60; });
  await h.waitForFunction((t) => {
    const v = document.querySelector('video');
    return !v.seeking && v.currentTime > t - 58 && v.currentTime < t - 50;
  }, before, { timeout: 15000, polling: 100 });
  const rewound = await h.evaluate(() => window.stats.position);
  await h.waitForFunction((t) => document.querySelector('video').currentTime > t + 2, rewound, { timeout: 15000, polling: 100 });
  log(`hls.js rewound from ${before.toFixed(1)} s to ${rewound.toFixed(1)} s and plays there`);
  await h.evaluate(() => { document.querySelector('video').currentTime = window.hls.liveSyncPosition; });
  await h.waitForFunction((max) => {
    const b = window.stats.behind;
    return b.length > 0 && b[b.length - 1][1] <= max && !document.querySelector('video').seeking;
  }, maxBehind, { timeout: 15000, polling: 100 });
  log('hls.js is back at live');

  // The publisher drops and comes back: every player stops for about the gap, no longer.
  const dropped = Date.now();
  await ask('@reconnect');
  await new Promise((r) => setTimeout(r, 10000));
  for (const [k, v] of Object.entries(await all())) {
    const stalls = v.stalls.filter((s) => s.at >= dropped);
    const longest = Math.max(0, v.stuck, ...stalls.map((s) => s.ms)) / 1000;
    log(`${k} after the reconnect: longest stop ${longest.toFixed(2)} s, position ${v.position.toFixed(1)}`);
    console.log(`@figure ${k} reconnect_stop=${longest.toFixed(3)}`);
    check(v.errors.length === 0, `${k} after the reconnect: ${v.errors.join('; ')}`);
    check(v.stuck === 0, `${k} has not played again since the reconnect`);
    check(longest <= gap + 1, `${k} stopped ${longest.toFixed(2)} s for a ${gap} s gap`);
  }

  // "From the start": the run's first second, though it left the DVR window long ago.
  await ask('@fromstart');
  const s = await browser.newPage();
  await s.setContent('<!doctype html><html><body></body></html>');
  await s.addScriptTag({ path: libs.hlsjs[0] });
  await s.evaluate(() => { window.startAt = 0; });
  await s.evaluate(startPlayer, ['hlsjs', index.replace(/index\.m3u8$/, 'start.m3u8')]);
  await s.waitForFunction(() => window.stats.started && document.querySelector('video').currentTime >= 1, null, { timeout: 20000, polling: 100 });
  const first = await s.evaluate(() => ({ start: window.hls.levels[0]?.details?.fragments[0]?.start, stats: window.stats }));
  check(first.stats.errors.length === 0, `from the start: ${first.stats.errors.join('; ')}`);
  check(first.stats.behind.length > 0 && first.stats.behind[0][1] > 20, `from the start began ${first.stats.behind[0]?.[1]} s behind live, not at the run's start`);
  log(`from the start: plays the first second, ${first.stats.behind[0][1].toFixed(1)} s behind live`);
} finally {
  await browser.close();
}
