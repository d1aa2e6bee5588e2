// Plays a VP9 + Opus live stream with hls.js in Debian's Chromium (run by
// cmd/onair/e2e/codecs_browser_test.go): the video advances with decoded frames of the
// published size, and the Opus audio is decoded, not just listed.
//
// Environment: ONAIR_HLS (the multivariant playlist's URL), CHROMIUM, WIDTH and HEIGHT
// (the published size).
import { createRequire } from 'node:module';
import { launch } from './browser.mjs';
import { check, log } from './steps.mjs';

const require = createRequire(import.meta.url);
const index = process.env.ONAIR_HLS;
if (!index) throw new Error('ONAIR_HLS is not set');

function start(url) {
  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  document.body.append(video);
  window.errors = [];
  const hls = new window.Hls({ lowLatencyMode: true });
  hls.on(window.Hls.Events.ERROR, (_, d) => { if (d.fatal) window.errors.push(`${d.type}: ${d.details}`); });
  hls.on(window.Hls.Events.MANIFEST_PARSED, (_, d) => { window.levels = d.levels.map((l) => [l.videoCodec, l.audioCodec]); });
  hls.loadSource(url);
  hls.attachMedia(video);
}

const browser = await launch();
try {
  const page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'warning' || m.type() === 'error') log('console', m.type(), m.text().slice(0, 300)); });
  await page.setContent('<!doctype html><html><body></body></html>');
  await page.addScriptTag({ path: require.resolve('hls.js/dist/hls.min.js') });
  const supported = await page.evaluate(() => ({
    vp9: MediaSource.isTypeSupported('video/mp4; codecs="vp09.00.21.08"'),
    opus: MediaSource.isTypeSupported('audio/mp4; codecs="opus"'),
  }));
  log('MediaSource support', JSON.stringify(supported));
  await page.evaluate(start, index);
  await page.waitForFunction(() => {
    const v = document.querySelector('video');
    return window.errors.length > 0 || (v.currentTime > 4 && !v.paused && v.webkitAudioDecodedByteCount > 0);
  }, null, { timeout: 45000, polling: 200 });
  const state = await page.evaluate(() => {
    const v = document.querySelector('video');
    const q = v.getVideoPlaybackQuality();
    return {
      time: v.currentTime, width: v.videoWidth, height: v.videoHeight, frames: q.totalVideoFrames,
      dropped: q.droppedVideoFrames, audio_bytes: v.webkitAudioDecodedByteCount, video_bytes: v.webkitVideoDecodedByteCount,
      levels: window.levels, errors: window.errors,
    };
  });
  console.log(JSON.stringify(state));
  check(state.errors.length === 0, `hls.js: ${state.errors.join('; ')}`);
  check(state.width === Number(process.env.WIDTH) && state.height === Number(process.env.HEIGHT), `video is ${state.width}x${state.height}`);
  check(state.frames > 60, `only ${state.frames} frames decoded`);
  check(state.audio_bytes > 0, 'no Opus audio decoded');
} finally {
  await browser.close();
}
process.exit(0);
