// Plays onair's live stream in Debian's Chromium with the players people embed: hls.js,
// Shaka Player and video.js (its VHS engine), each in low-latency mode, in pages of one browser side by side, and checks what a viewer would notice (run by
// cmd/onair/e2e/players_test.go):
//   - each plays without a stall for WATCH seconds, at most MAX_BEHIND seconds behind live
//     (by the playlist's PROGRAM-DATE-TIME, which onair stamps at ingest);
//   - hls.js rewinds 60 s and comes back to live;
//   - the publisher drops its connection and comes back after a few seconds ("@reconnect"):
//     no player stops for longer than the publisher was away (the Go side measures it,
//     ffmpeg's own start included) and a fetch and append of its first part, and each
//     plays on;
//   - "from the start": hls.js plays the first second of the run from start.m3u8, which
//     has been live for longer than the DVR window ("@fromstart" waits for that).
//
// Protocol on stdout/stdin as steps.mjs describes. Environment: ONAIR_HLS (the
// multivariant playlist's URL), WATCH, MAX_BEHIND, GAP and DVR_WINDOW (the server's, all
// in seconds).
import { createRequire } from 'node:module';
import { launch } from './browser.mjs';
import { ask, check, log } from './steps.mjs';

const require = createRequire(import.meta.url);
const index = process.env.ONAIR_HLS;
const watch = Number(process.env.WATCH || 60);
// The date is the ingest's wall clock, so a publisher that falls behind real time on a
// busy machine shows as the players being behind.
const maxBehind = Number(process.env.MAX_BEHIND || 1.5);
const gap = Number(process.env.GAP || 3);
// What a player may need past the publisher's absence to fetch and append the returning
// publisher's first part. Its stop is counted from when its buffer ran dry, some tenths
// of a second after the drop, which pays for one playlist answer, a part request on the
// loopback and the appends of both tracks. What the buffer does not cover is how late
// a player learns of the part: Shaka and VHS hold a blocking reload for it and hear at
// once, but hls.js gives up a blocking reload after 0.8 target durations and then polls
// every half target duration (its playlist loader and computeReloadInterval), so it may
// hear of the part up to half a target duration (1 s here) after it was listed.
const fetchAndAppend = 0.5;
// TRACE=1 logs each player's requests and events around the reconnect.
const trace = !!process.env.TRACE;
const dvrWindow = Number(process.env.DVR_WINDOW || 70);
const players = (process.env.PLAYERS || 'hlsjs,shaka,videojs').split(',');
if (!index) throw new Error('ONAIR_HLS is not set');

const libs = {
  hlsjs: [require.resolve('hls.js/dist/hls.min.js')],
  shaka: [require.resolve('shaka-player/dist/shaka-player.compiled.js')],
  videojs: [require.resolve('video.js/dist/video.min.js')],
};

// In the page: start the player on url, and keep figures in window.stats: the playback
// position and how far behind live it is (now minus the PROGRAM-DATE-TIME of what
// shows), and stalls (the position not moving for 300 ms or more while playing, with
// nothing buffered).
function startPlayer([kind, url]) {
  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  video.playsInline = true;
  document.body.append(video);
  const stats = { kind, behind: [], stalls: [], hiccups: [], errors: [], warnings: [], arrivals: [], gaps: [], trace: [], started: 0, position: 0 };
  window.stats = stats;
  let date = () => null;
  if (kind === 'hlsjs') {
    // As onair's own player does: catch up with live after a stall instead of drifting; and
    // keep the target latency when the start stalls on a busy machine.
    const hls = new window.Hls({ lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.5, liveSyncOnStallIncrease: 0,
      startPosition: window.startAt ?? -1 });
    hls.on(window.Hls.Events.ERROR, (_, d) => { if (d.fatal) stats.errors.push(`${d.type}: ${d.details}`); });
    // How late each part arrives after the wall-clock time its media ends at (by
    // PROGRAM-DATE-TIME): the publisher, onair and the network together, without the player.
    hls.on(window.Hls.Events.FRAG_LOADED, (_, d) => {
      const f = d.frag;
      if (!f.programDateTime || f.type !== 'main') return;
      const end = d.part ? f.programDateTime + (d.part.start - f.start + d.part.duration) * 1000 : f.programDateTime + f.duration * 1000;
      stats.arrivals.push([Date.now(), (Date.now() - end) / 1000]);
      if (stats.arrivals.length > 2000) stats.arrivals.splice(0, 1000);
    });
    // With TRACE set, what hls.js did around the reconnect (window.traceFrom on).
    const note = (what) => { if (window.traceFrom) stats.trace.push([Date.now() - window.traceFrom, what]); };
    hls.on(window.Hls.Events.ERROR, (_, d) => note(`error ${d.details} fatal=${d.fatal}`));
    hls.on(window.Hls.Events.FRAG_LOADED, (_, d) => note(`loaded sn=${d.frag.sn} part=${d.part?.index ?? '-'} cc=${d.frag.cc} ${d.frag.type}`));
    hls.on(window.Hls.Events.BUFFER_APPENDED, (_, d) => note(`appended sn=${d.frag?.sn} part=${d.part?.index ?? '-'} ${d.type} end=${(d.timeRanges?.video ?? d.timeRanges?.audio)?.length ? (d.timeRanges.video ?? d.timeRanges.audio).end(0).toFixed(2) : '-'}`));
    hls.on(window.Hls.Events.LEVEL_UPDATED, (_, d) => note(`level updated live=${d.details.live} end=${d.details.edge?.toFixed?.(2)}`));
    hls.on(window.Hls.Events.BUFFER_FLUSHING, (_, d) => note(`flushing ${d.startOffset}-${d.endOffset} ${d.type}`));
    hls.loadSource(url);
    hls.attachMedia(video);
    window.hls = hls;
    date = () => hls.playingDate;
  } else if (kind === 'shaka') {
    window.shaka.polyfill.installAll();
    const player = new window.shaka.Player();
    // Shaka 5.2's own workaround for its bug #10589 (fixed in its nightly builds): with a
    // negative timestampOffset, which any live stream joined after its start gives, it
    // drops the parts that do not start with a key frame.
    player.configure({
      streaming: { lowLatencyMode: true, liveSync: { enabled: true, maxPlaybackRate: 1.5 } },
      manifest: { hls: { sequenceMode: true } },
    });
    // Recoverable errors (a request Shaka retries) are noted; critical ones end playback.
    player.addEventListener('error', (e) => {
      const d = e.detail;
      const what = `shaka ${d.code} (category ${d.category}) ${JSON.stringify(d.data).slice(0, 300)}`;
      if (d.severity === window.shaka.util.Error.Severity.CRITICAL) stats.errors.push(what);
      else stats.warnings.push(what);
    });
    player.attach(video).then(() => player.load(url)).catch((e) => stats.errors.push(`shaka load ${e.code}`));
    window.player = player;
    date = () => player.getPlayheadTimeAsDate();
  } else {
    video.className = 'video-js';
    const player = window.videojs(video, { autoplay: 'muted', muted: true, liveui: true });
    // VHS says at debug level why it gives up (into the log's history, not the console).
    window.videojs.log.level('debug');
    player.on('error', () => {
      const said = window.videojs.log.history().slice(-60).map((e) => e.join(' ').slice(0, 240));
      stats.errors.push(`video.js ${player.error()?.code}: ${player.error()?.message} | VHS said: ${said.join(' | ')}`);
    });
    // VHS (3.17) loops at a live start that falls in the part after an independent one:
    // with nothing buffered ahead of the position it loads the previous part when the next
    // is not independent, but that part ends before the position, so nothing is ever
    // buffered ahead and it loads it again, until after ten appends that did not grow the
    // buffer it gives the playlist up (MEDIA_ERR_DECODE). It happens to a fifth of the
    // starts on a stream with a key frame every five parts. The guard a site needs: when
    // VHS appends the same part twice in a row, play from that part.
    let lastAppend = '';
    player.on('appendsdone', (e) => {
      const seg = e.metadata?.segmentInfo;
      if (seg?.type !== 'main') return;
      if (seg.uri === lastAppend) {
        stats.restarts = (stats.restarts || 0) + 1;
        player.currentTime(Math.max(0, player.currentTime() - seg.duration));
      }
      lastAppend = seg.uri;
    });
    player.src({ src: url, type: 'application/x-mpegURL' });
    window.player = player;
    // VHS keeps each segment's place on the timeline once it loaded some of it, and the
    // PROGRAM-DATE-TIME of those that have one: the segment being written, which a
    // low-latency player plays most of the time, has none yet, so the time is counted
    // from the last dated segment before the position.
    date = () => {
      const media = player.tech(true).vhs?.playlists.media();
      const t = player.currentTime();
      let dated = null;
      for (const s of media?.segments || []) {
        if (s.discontinuity) dated = null;
        // Those before the player joined were never loaded, and have no place.
        if (typeof s.start !== 'number') continue;
        if (s.start > t) break;
        if (s.dateTimeObject) dated = s;
      }
      return dated ? new Date(dated.dateTimeObject.getTime() + (t - dated.start) * 1000) : null;
    };
    window.whyNoDate = () => (player.tech(true).vhs?.playlists.media()?.segments || []).slice(-8)
      .map((s) => ({ start: s.start, end: s.end, dated: !!s.dateTimeObject, preload: !!s.preload, disc: !!s.discontinuity }));
  }
  let last = -1, stuckSince = 0, aheadWhenStuck = 0, tick = 0, seenLog = 0;
  setInterval(() => {
    const now = performance.now();
    // A tick that comes late is the page not being scheduled: the machine is busy.
    if (tick && now - tick > 250) stats.gaps.push([Date.now(), Math.round(now - tick)]);
    tick = now;
    const t = video.currentTime;
    if (video.error) stats.errors.push(`media error ${video.error.code}: ${video.error.message}`);
    if (!stats.started && t > 0 && !video.paused) stats.started = Date.now();
    const b = video.buffered;
    const ahead = b.length ? b.end(b.length - 1) - t : 0;
    if (stats.started && !video.paused && !video.seeking) {
      if (t === last) {
        if (!stuckSince) {
          [stuckSince, aheadWhenStuck] = [now, ahead];
          if (window.traceFrom) stats.trace.push([Date.now() - window.traceFrom, `stops at ${t.toFixed(2)}, ${ahead.toFixed(2)} s buffered`]);
        }
      } else {
        // A stop with the buffer dry is a stall: the media came late. A stop with media
        // buffered is the page not being scheduled (a busy machine), noted apart.
        const stop = { at: Date.now(), ms: Math.round(now - stuckSince), ahead: +aheadWhenStuck.toFixed(2) };
        if (stuckSince && stop.ms >= 300) (aheadWhenStuck < 0.3 ? stats.stalls : stats.hiccups).push(stop);
        if (stuckSince && window.traceFrom) stats.trace.push([Date.now() - window.traceFrom, `plays again at ${t.toFixed(2)} after ${stop.ms} ms`]);
        stuckSince = 0;
      }
    }
    if (window.traceFrom && window.videojs) {
      // VHS's debug log, stamped when the tick sees it.
      const said = window.videojs.log.history();
      if (said.length < seenLog) seenLog = 0;
      for (const e of said.slice(seenLog)) stats.trace.push([Date.now() - window.traceFrom, `VHS ${e.join(' ').slice(0, 200)}`]);
      seenLog = said.length;
    }
    last = t;
    stats.position = t;
    stats.stuck = stuckSince ? Math.round(now - stuckSince) : 0;
    stats.player = { rate: video.playbackRate, ahead: +ahead.toFixed(2) };
    if (window.hls) Object.assign(stats.player, { latency: +(window.hls.latency || 0).toFixed(2), target: window.hls.targetLatency });
    if (window.player?.getStats) {
      stats.player.latency = +(window.player.getStats().liveLatency || 0).toFixed(2);
      // What Shaka's live sync compares with its target: the position behind its seek range's end.
      stats.player.sync = +(window.player.seekRange().end - video.currentTime).toFixed(2);
    }
    const d = date();
    if (stats.started && d) stats.behind.push([Date.now(), (Date.now() - d.getTime()) / 1000]);
    if (stats.behind.length > 2000) stats.behind.splice(0, 1000);
  }, 50);
}

// main plays, checks, and leaves: stdin, which ask reads, would keep node running.
async function main() {
  const browser = await launch();
  const pages = {};
  // Tracing (TRACE): when it began, and each page's requests since, [sent, done, what].
  let traceFrom = 0;
  const requests = Object.fromEntries(players.map((k) => [k, []]));
  try {
    for (const kind of players) {
      const page = await browser.newPage();
      page.on('pageerror', (e) => log(kind, 'page error:', e.message));
      // The players' own warnings say why they gave up on a playlist or a part.
      page.on('console', (m) => { if (m.type() === 'warning' || m.type() === 'error') log(kind, m.type(), m.text().slice(0, 300)); });
      if (trace) {
        const short = (u) => u.replace(/^.*\/([^/?]*)\??/, '$1 ').replace(/\b[0-9a-f]{16}_/, '').replace(/&?s=[0-9a-f]{16}/, '');
        const sent = new Map();
        page.on('request', (r) => { if (traceFrom) sent.set(r, Date.now() - traceFrom); });
        const done = async (r, failed) => {
          if (!sent.has(r)) return;
          const status = failed ? `failed ${r.failure()?.errorText}` : (await r.response())?.status();
          requests[kind].push([sent.get(r), Date.now() - traceFrom, `${short(r.url())} ${status}`]);
          sent.delete(r);
        };
        page.on('requestfinished', (r) => done(r, false));
        page.on('requestfailed', (r) => done(r, true));
      }
      await page.setContent('<!doctype html><html><body></body></html>');
      for (const path of libs[kind]) await page.addScriptTag({ path });
      if (kind === 'videojs') await page.addStyleTag({ path: require.resolve('video.js/dist/video-js.min.css') });
      await page.evaluate(startPlayer, [kind, index]);
      pages[kind] = page;
      // One player starts at a time, as each viewer's own browser would: Shaka fixes its idea
      // of the live edge from the wall clock when it has parsed the playlists, so a start
      // slowed by the next player's loading would keep it that much further behind live.
      await page.waitForFunction(() => window.stats.started || window.stats.errors.length, null, { timeout: 20000, polling: 100 })
        .catch(() => {});
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
    log(`all players play: ${players.join(', ')}`);
    // Players that start while the machine is busy start late, and hls.js, for one, only
    // adjusts its rate within a target duration of its target latency: each goes to the live
    // edge once, as a page's Live button does, then settles at its distance from live.
    const goLive = () => {
      if (window.hls) document.querySelector('video').currentTime = window.hls.liveSyncPosition;
      else if (window.player?.goToLive) window.player.goToLive();
      else if (window.player?.liveTracker) window.player.liveTracker.seekToLiveEdge();
    };
    await new Promise((r) => setTimeout(r, 3000));
    for (const page of Object.values(pages)) await page.evaluate(goLive);
    await new Promise((r) => setTimeout(r, 7000));
    // A player that settled further behind than the bound, its seek having gone to an edge
    // it had not caught up with yet, gets Live pressed once more, as a viewer would; the
    // log says so. video.js has no catch-up rate: without this it could stay there.
    let again = false;
    for (const [k, page] of Object.entries(pages)) {
      const b = (await stats(k)).behind.at(-1)?.[1] ?? Infinity;
      if (b <= maxBehind) continue;
      log(`${k} settled ${b.toFixed(2)} s behind live: Live pressed again`);
      await page.evaluate(goLive);
      again = true;
    }
    if (again) await new Promise((r) => setTimeout(r, 7000));
    const from = Date.now();
    await new Promise((r) => setTimeout(r, watch * 1000));
    const failures = [];
    for (const [k, v] of Object.entries(await all())) {
      const behind = v.behind.filter(([at]) => at >= from).map(([, b]) => b);
      if (behind.length === 0) {
        const why = await pages[k].evaluate(() => window.whyNoDate?.());
        failures.push(`${k}: no position while watching (at ${v.position.toFixed(2)} s; ${JSON.stringify(v.player)}; ${v.errors.join('; ')}; ${JSON.stringify(why)})`);
        continue;
      }
      const sorted = [...behind].sort((a, b) => a - b);
      const median = sorted[Math.floor(sorted.length / 2)];
      const worst = sorted[sorted.length - 1];
      const stalls = v.stalls.filter((s) => s.at >= from);
      const hiccups = v.hiccups.filter((s) => s.at >= from);
      const worstAt = ((v.behind.find(([at, b]) => at >= from && b === worst)[0] - from) / 1000).toFixed(1);
      const gaps = v.gaps.filter(([at]) => at >= from).map(([at, ms]) => `${((at - from) / 1000).toFixed(1)}s:${ms}ms`);
      const late = v.arrivals.filter(([at]) => at >= from);
      const lateWorst = late.reduce((w, x) => (x[1] > w[1] ? x : w), [0, -Infinity]);
      log(`figure ${k} behind_median=${median.toFixed(3)} behind_max=${worst.toFixed(3)} (at ${worstAt} s) stalls=${stalls.length} hiccups=${hiccups.length} ${JSON.stringify(v.player)}`
        + ` page_gaps=[${gaps.join(' ')}]` + (late.length ? ` part_late_max=${lateWorst[1].toFixed(3)} (at ${((lateWorst[0] - from) / 1000).toFixed(1)} s)` : '')
        + (stalls.length ? ` stall_at=${stalls.map((x) => ((x.at - from) / 1000).toFixed(1)).join(',')}` : ''));
      if (v.warnings.length) log(`${k} recovered from: ${[...new Set(v.warnings)].join('; ')}`);
      if (v.errors.length) failures.push(`${k}: ${v.errors.join('; ')}`);
      if (worst > maxBehind) failures.push(`${k} was ${worst.toFixed(2)} s behind live, more than ${maxBehind} s`);
      if (stalls.length) failures.push(`${k} stalled: ${JSON.stringify(stalls)}`);
    }
    check(failures.length === 0, failures.join('; '));

    // hls.js rewinds a minute and plays there, then goes back to live, once the run is
    // long enough.
    const h = pages.hlsjs;
    await h.waitForFunction(() => {
      const v = document.querySelector('video');
      return v.seekable.length > 0 && v.currentTime - v.seekable.start(0) > 62;
    }, null, { timeout: 90000, polling: 500 });
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
    // Back at live by hls.js's own measure: within a few part targets of the playlist's edge.
    await h.waitForFunction(() => window.hls.latency <= 3 && !document.querySelector('video').seeking,
      null, { timeout: 15000, polling: 100 });
    log('hls.js is back at live');

    // The publisher drops and comes back: no player stops for longer than the publisher was
    // away (the Go side measures that, from the kill to onair's first part of the
    // returning publisher) and the time a player then needs to fetch and append it.
    const atDrop = Object.fromEntries(Object.entries(await all()).map(([k, v]) => [k, v.position]));
    if (trace) {
      traceFrom = Date.now();
      for (const [k, page] of Object.entries(pages)) {
        await page.evaluate((t) => { window.traceFrom = t; if (window.videojs) window.videojs.log.history.clear(); }, traceFrom);
        log(`${k} at the drop: ${JSON.stringify(await stats(k).then((v) => v.player))}`);
      }
    }
    const dropped = Date.now();
    if (trace) log(`the drop is at +${dropped - traceFrom} ms of the trace`);
    const away = Number(await ask('@reconnect'));
    check(away >= gap, `the Go side measured the publisher away for ${away} s, less than the ${gap} s it waited`);
    // Every player plays on past the gap, or the deadline says which did not: the checks
    // below then judge how long each stopped.
    let after;
    for (const deadline = Date.now() + 30000; ;) {
      after = await all();
      if (Date.now() > deadline || Object.entries(after).every(([k, v]) => v.stuck === 0 && v.position > atDrop[k] + gap + 2)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const stopped = [];
    for (const [k, v] of Object.entries(after)) {
      const stalls = v.stalls.filter((s) => s.at >= dropped);
      const longest = Math.max(0, v.stuck, ...stalls.map((s) => s.ms)) / 1000;
      if (trace) {
        for (const [at, what] of v.trace) log(`${k} trace +${at} ms ${what}`);
        for (const [from, to, what] of requests[k]) log(`${k} request +${from}..${to} ms ${what}`);
      }
      const allowed = away + fetchAndAppend;
      log(`${k} after the reconnect: longest stop ${longest.toFixed(2)} s (at most ${allowed.toFixed(2)} s), position ${v.position.toFixed(1)}`);
      log(`figure ${k} reconnect_stop=${longest.toFixed(3)} reconnect_gap=${away.toFixed(3)}`);
      if (v.warnings.length) log(`${k} recovered from: ${[...new Set(v.warnings)].join('; ')}`);
      if (v.errors.length) stopped.push(`${k} after the reconnect: ${v.errors.join('; ')}`);
      if (v.stuck) stopped.push(`${k} has not played again since the reconnect`);
      if (longest > allowed) stopped.push(`${k} stopped ${longest.toFixed(2)} s for a publisher away ${away.toFixed(2)} s (at most ${allowed.toFixed(2)} s allowed)`);
    }
    check(stopped.length === 0, stopped.join('; '));

    // "From the start": the run's first second, though it left the DVR window long ago.
    await ask('@fromstart');
    const s = await browser.newPage();
    await s.setContent('<!doctype html><html><body></body></html>');
    await s.addScriptTag({ path: libs.hlsjs[0] });
    await s.evaluate(() => { window.startAt = 0; });
    await s.evaluate(startPlayer, ['hlsjs', index.replace(/index\.m3u8$/, 'start.m3u8')]);
    await s.waitForFunction(() => window.stats.started && document.querySelector('video').currentTime >= 1, null, { timeout: 20000, polling: 100 });
    const first = await s.evaluate(() => ({ runStart: window.hls.levels[0]?.details?.fragments[0]?.programDateTime, stats: window.stats }));
    check(first.stats.errors.length === 0, `from the start: ${first.stats.errors.join('; ')}`);
    check(first.stats.behind.length > 0 && first.stats.behind[0][1] > dvrWindow, `from the start began ${first.stats.behind[0]?.[1]} s behind live, within the DVR window`);
    // What showed first was from the run's first second (by PROGRAM-DATE-TIME).
    const shown = first.stats.behind[0][0] - first.stats.behind[0][1] * 1000;
    check(first.runStart && Math.abs(shown - first.runStart) < 1500, `from the start showed ${shown - first.runStart} ms after the run's start`);
    log(`from the start: plays the first second, ${first.stats.behind[0][1].toFixed(1)} s behind live`);
  } finally {
    await browser.close();
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
