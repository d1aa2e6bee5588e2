// The watch page: plays /live/<stream>/index.m3u8 with hls.js (or natively on Safari),
// shows whether the stream is live, how far behind live the viewer is, and lets them
// rewind within the DVR window and jump back to live.
import Hls from 'hls.js';

const root = document.getElementById('watch');
const stream = root.dataset.stream;
const src = `/live/${encodeURIComponent(stream)}/index.m3u8`;
const video = root.querySelector('video');
const overlay = root.querySelector('.overlay');
const badge = root.querySelector('.badge');
const latencyEl = root.querySelector('.latency');

let hls = null;
let retryTimer = null;

function show(message) {
  overlay.textContent = message;
  overlay.hidden = !message;
}

function setLive(on) {
  badge.textContent = on ? 'LIVE' : 'OFFLINE';
  badge.classList.toggle('live', on);
}

function retryLater() {
  clearTimeout(retryTimer);
  retryTimer = setTimeout(start, 3000);
}

function start() {
  if (hls) {
    hls.destroy();
    hls = null;
  }
  if (Hls.isSupported()) {
    // Catch up (up to 1.5x speed) after a stall instead of drifting further behind live.
    hls = new Hls({ lowLatencyMode: true, backBufferLength: 180, maxLiveSyncPlaybackRate: 1.5 });
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      show('');
      setLive(true);
      video.play().catch(() => show('Press play to start'));
    });
    hls.on(Hls.Events.LEVEL_UPDATED, (_, data) => {
      if (!data.details.live) {
        setLive(false);
      }
    });
    hls.on(Hls.Events.ERROR, (_, data) => {
      if (!data.fatal) {
        return;
      }
      const code = data.response && data.response.code;
      setLive(false);
      show(code === 404 ? 'This stream is offline. Waiting for it to start…' : 'Playback problem; retrying…');
      retryLater();
    });
    hls.loadSource(src);
    hls.attachMedia(video);
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = src;
    video.addEventListener('loadedmetadata', () => { show(''); setLive(true); video.play().catch(() => {}); }, { once: true });
    video.addEventListener('error', () => { setLive(false); show('This stream is offline.'); retryLater(); }, { once: true });
  } else {
    show('This browser cannot play HLS.');
  }
}

function liveEdge() {
  if (hls && hls.liveSyncPosition) {
    return hls.liveSyncPosition;
  }
  const r = video.seekable;
  return r.length ? r.end(r.length - 1) : video.currentTime;
}

function seekBy(seconds) {
  const r = video.seekable;
  if (!r.length) {
    return;
  }
  video.currentTime = Math.max(r.start(0), Math.min(liveEdge(), video.currentTime + seconds));
}

root.querySelector('[data-action=back30]').addEventListener('click', () => seekBy(-30));
root.querySelector('[data-action=back60]').addEventListener('click', () => seekBy(-60));
root.querySelector('[data-action=live]').addEventListener('click', () => {
  video.currentTime = liveEdge();
  video.play().catch(() => {});
});
video.addEventListener('ended', () => {
  setLive(false);
  show('The stream has ended.');
  retryLater();
});

setInterval(() => {
  const latency = hls && hls.latency;
  latencyEl.textContent = latency ? `${latency.toFixed(1)} s behind live` : '';
  root.dataset.latency = latency ? latency.toFixed(3) : '';
}, 500);

start();
