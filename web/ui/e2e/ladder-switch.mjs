// How fast hls.js leaves the top of a rendition ladder when the network narrows, for
// `bench ladder` (scripts/bench/ladder): the watch page of a live stream (STREAM) with
// several renditions, in Auto. Each run, in a fresh browser context: wait until hls.js
// plays the top rendition, throttle the page's network (Chrome DevTools Protocol network
// conditions) to THROTTLE_KBPS, time until LEVEL_SWITCHED goes to a lower level and to the
// lowest, lift the throttle and time until it is back on the top. Prints JSON.
//
// Environment: ONAIR_URL, STREAM, CHROMIUM, RUNS (3), THROTTLE_KBPS (700).
import { launch } from './browser.mjs';

const base = process.env.ONAIR_URL;
const stream = process.env.STREAM;
if (!base || !stream) throw new Error('ONAIR_URL and STREAM must be set');
const runs = Number(process.env.RUNS || 3);
const kbps = Number(process.env.THROTTLE_KBPS || 700);

const level = (page) => page.evaluate(() => document.querySelector('[data-player]').dataset.level);
// waitLevel polls every 50 ms until the player's level satisfies ok; the time is taken in
// this process when the poll sees it, so the figures are late by at most a poll.
async function waitLevel(page, ok, timeout) {
  const end = Date.now() + timeout;
  for (;;) {
    if (ok(await level(page))) return Date.now();
    if (Date.now() > end) return null;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const browser = await launch();
const out = { throttle_kbps: kbps, levels: [], runs: [] };
try {
  for (let i = 0; i < runs; i++) {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await ctx.newPage();
    await page.goto(`${base}/watch/${stream}`);
    await page.waitForFunction(() => document.querySelector('[data-player]').dataset.state === 'live', null, { timeout: 30000, polling: 200 });
    // The menu lists the levels largest first: the first after Auto is the top.
    const levels = await page.evaluate(() => [...document.querySelector('select[data-quality]').options].slice(1).map((o) => ({ value: o.value, name: o.textContent })));
    out.levels = levels;
    const top = levels[0].value;
    const lowest = levels[levels.length - 1].value;
    const run = {};
    // Settled: on the top for 2 s in a row.
    for (let since = null; ;) {
      const t = await waitLevel(page, (l) => l === top, 90000);
      if (t === null) throw new Error(`run ${i + 1}: hls.js never reached the top rendition (level ${await level(page)})`);
      since ??= t;
      if (Date.now() - since >= 2000) break;
      if ((await level(page)) !== top) since = null;
      await new Promise((r) => setTimeout(r, 100));
    }
    const cdp = await ctx.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 20, downloadThroughput: kbps * 125, uploadThroughput: kbps * 125 });
    const throttled = Date.now();
    const down = await waitLevel(page, (l) => l !== top, 60000);
    const low = await waitLevel(page, (l) => l === lowest, 60000);
    run.down_ms = down && down - throttled;
    run.lowest_ms = low && low - throttled;
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    const lifted = Date.now();
    const up = await waitLevel(page, (l) => l === top, 90000);
    run.up_ms = up && up - lifted;
    out.runs.push(run);
    process.stderr.write(`run ${i + 1}: ${JSON.stringify(run)}\n`);
    await ctx.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
process.exit(0);
