// Measures the room page as a first-time viewer gets it, in headless Chromium:
//   page_bytes       bytes on the wire (compressed, headers included) of the page and its
//                    scripts and styles: what a first load costs before any video
//   first_frame_ms   from the start of navigation to the first video frame on screen
//                    (requestVideoFrameCallback's presentation time, noted by the player
//                    in data-first-frame-ms)
// Each run uses a fresh browser context (empty cache). Prints JSON.
//
//   node web/ui/e2e/bench.mjs --url http://127.0.0.1:8080/rooms/<live room> [--runs 5]
// (/watch/<stream> works too). The page must be live.
import { pathToFileURL } from 'node:url';
import { launch } from './browser.mjs';

const pageTypes = new Set(['Document', 'Script', 'Stylesheet', 'Font', 'Image']);

export async function measure(browser, url, { runs = 5, timeoutMs = 20000 } = {}) {
  const out = [];
  for (let i = 0; i < runs; i++) {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const page = await ctx.newPage();
      const cdp = await ctx.newCDPSession(page);
      await cdp.send('Network.enable');
      await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
      const reqs = new Map();
      cdp.on('Network.responseReceived', (e) => {
        reqs.set(e.requestId, { url: e.response.url, type: e.type, encoding: e.response.headers['content-encoding'] || e.response.headers['Content-Encoding'] || '', bytes: 0 });
      });
      cdp.on('Network.loadingFinished', (e) => {
        const r = reqs.get(e.requestId);
        if (r) r.bytes = e.encodedDataLength;
      });
      await page.goto(url, { waitUntil: 'load', timeout: timeoutMs });
      await page.waitForFunction(() => document.querySelector('[data-player]')?.dataset.firstFrameMs, null, { timeout: timeoutMs, polling: 50 });
      const ff = await page.evaluate(() => Number(document.querySelector('[data-player]').dataset.firstFrameMs));
      const pageReqs = [...reqs.values()].filter((r) => pageTypes.has(r.type));
      const mediaReqs = [...reqs.values()].filter((r) => !pageTypes.has(r.type));
      out.push({
        first_frame_ms: Math.round(ff),
        page_bytes: pageReqs.reduce((n, r) => n + r.bytes, 0),
        media_bytes_to_first_frame: mediaReqs.reduce((n, r) => n + r.bytes, 0),
        files: pageReqs.map((r) => ({ url: new URL(r.url).pathname, bytes: r.bytes, encoding: r.encoding })),
      });
    } finally {
      await ctx.close();
    }
  }
  const ff = out.map((r) => r.first_frame_ms).sort((a, b) => a - b);
  return {
    url,
    runs,
    first_frame_ms: { median: ff[Math.floor(ff.length / 2)], min: ff[0], max: ff[ff.length - 1], all: out.map((r) => r.first_frame_ms) },
    page_bytes: out[0].page_bytes,
    media_bytes_to_first_frame: out[0].media_bytes_to_first_frame,
    files: out[0].files,
    target_first_frame_ms: 1500,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const opt = (name, def) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && args[i + 1] ? args[i + 1] : def;
  };
  const url = opt('url', process.env.ONAIR_BENCH_URL);
  if (!url) {
    console.error('usage: node bench.mjs --url http://host:port/rooms/<live room> [--runs 5]');
    process.exit(2);
  }
  const browser = await launch();
  try {
    console.log(JSON.stringify(await measure(browser, url, { runs: Number(opt('runs', '5')) }), null, 2));
  } finally {
    await browser.close();
  }
}
