// The player: live LL-HLS (with latency, rewind and jump-to-live) and recordings (with a
// seekable timeline), on hls.js where the browser has Media Source Extensions and on the
// browser's own HLS (Safari on iOS) where it has not. The page's markup (the "player"
// template in web/templates/layout.html) holds the controls; this wires them.
//
// The root element's data- attributes mirror the state for tests and styling:
// data-state (loading, live, behind, ended, offline, vod, error), data-source (live, or
// start while playing a live broadcast from its start), data-latency (seconds behind live), data-dvr (seconds of rewindable window), data-fatal-errors,
// data-first-frame-ms (time from navigation to the first frame on screen), data-levels (the
// renditions offered), data-level (the one playing, by hls.js's index), data-level-choice (the
// menu's choice: auto or an index), data-ladder-updates (times a change of the live stream's
// renditions was handed to hls.js).
import Hls from './hls.js';
import { $, h, clock } from './dom.js';
import { ladderChange, streamLive } from './ladder.js';

const nativeHLS = () => {
  const v = document.createElement('video');
  return v.canPlayType('application/vnd.apple.mpegurl') !== '';
};

export class Player {
  constructor(root, { onEnded, onOffline, onPlaying } = {}) {
    this.root = root;
    this.video = $('video', root);
    this.overlay = $('[data-overlay]', root);
    this.badge = $('[data-badge]', root);
    this.latencyEl = $('[data-latency-text]', root);
    this.latencyNum = h('span');
    this.latencyEl.replaceChildren(this.latencyNum, h('span', { class: 'wide' }, ' behind live'));
    this.timeEl = $('[data-time]', root);
    this.durEl = $('[data-duration]', root);
    this.seek = $('[data-seek]', root);
    this.volume = $('[data-volume]', root);
    this.quality = $('[data-quality]', root);
    this.cb = { onEnded: onEnded || (() => {}), onOffline: onOffline || (() => {}), onPlaying: onPlaying || (() => {}) };
    this.hls = null;
    this.mode = '';
    this.liveSrc = ''; // the live stream's multivariant playlist
    this.startSrc = ''; // its broadcast from the start (start.m3u8), when recorded
    this.fromStart = false; // playing startSrc rather than liveSrc
    this.ended = false;
    this.startAt = 0; // where a recording starts (a shared link's ?t=)
    this.played = false;
    this.fatalErrors = 0;
    this.mediaRecoveries = 0;
    this.dragging = false;
    this.bufferTimer = 0;
    this.hlsSrc = ''; // what hls.js plays, and its configuration: a new ladder restarts it
    this.hlsConfig = null;
    this.ladderQuiet = 0; // no ladder hand-over before this time (performance.now())
    this.handOverDue = false; // a hand-over waits for a segment's start (handOverAtSegment)
    this.gone = new Set(); // renditions whose playlist ended while the stream went on
    this.root.dataset.fatalErrors = '0';
    this.root.dataset.ladderUpdates = '0';
    this.wire();
    this.watchFirstFrame();
    setInterval(() => this.tick(), 250);
  }

  btn(name) { return $(`[data-act=${name}]`, this.root); }

  wire() {
    const v = this.video;
    this.btn('play').addEventListener('click', () => (v.paused ? this.play() : v.pause()));
    this.btn('back30').addEventListener('click', () => this.seekBy(-30));
    this.btn('back60').addEventListener('click', () => this.seekBy(-60));
    this.btn('live').addEventListener('click', () => (this.fromStart ? this.playLive(this.liveSrc) : this.goLive()));
    this.btn('start').addEventListener('click', () => this.playFromStart());
    this.btn('mute').addEventListener('click', () => {
      v.muted = !v.muted;
      if (!v.muted && v.volume === 0) v.volume = 0.5;
    });
    this.btn('unmute').addEventListener('click', () => {
      v.muted = false;
      if (v.volume === 0) v.volume = 0.5;
    });
    this.btn('fullscreen').addEventListener('click', () => this.toggleFullscreen());
    this.quality.addEventListener('change', () => this.chooseLevel(this.quality.value));
    this.volume.addEventListener('input', () => {
      v.volume = Number(this.volume.value);
      v.muted = v.volume === 0;
    });
    v.addEventListener('volumechange', () => this.showVolume());
    v.addEventListener('play', () => this.showPlaying());
    v.addEventListener('pause', () => this.showPlaying());
    v.addEventListener('playing', () => {
      clearTimeout(this.bufferTimer);
      this.played = true;
      this.show('');
      this.cb.onPlaying();
    });
    v.addEventListener('waiting', () => {
      clearTimeout(this.bufferTimer);
      this.bufferTimer = setTimeout(() => { if (!this.ended) this.show('Buffering…', true); }, 1200);
    });
    v.addEventListener('ended', () => this.mediaEnded());
    v.addEventListener('click', () => (v.paused ? this.play() : v.pause()));
    v.addEventListener('dblclick', () => this.toggleFullscreen());
    this.overlay.addEventListener('click', () => { if (v.paused) this.play(); });
    this.seek.addEventListener('input', () => {
      this.dragging = true;
      this.timeEl.textContent = clock(Number(this.seek.value));
    });
    this.seek.addEventListener('change', () => {
      this.dragging = false;
      v.currentTime = Number(this.seek.value);
    });
    this.root.addEventListener('keydown', (e) => {
      const t = e.target;
      const typing = t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement;
      const onButton = t instanceof HTMLButtonElement;
      if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
      switch (e.key) {
        case ' ': case 'k':
          if (onButton && e.key === ' ') return; // the button's own action
          e.preventDefault();
          if (v.paused) this.play(); else v.pause();
          break;
        case 'f': e.preventDefault(); this.toggleFullscreen(); break;
        case 'm': e.preventDefault(); v.muted = !v.muted; break;
        case 'ArrowLeft': e.preventDefault(); this.seekBy(-5); break;
        case 'ArrowRight': e.preventDefault(); this.seekBy(5); break;
        default:
      }
    });
    this.showVolume();
    this.showPlaying();
  }

  // watchFirstFrame notes when the first frame is on screen (for the benchmark).
  watchFirstFrame() {
    const v = this.video;
    const mark = (t) => {
      if (this.root.dataset.firstFrameMs) return;
      this.root.dataset.firstFrameMs = t.toFixed(1);
      performance.mark('onair:first-frame');
    };
    if ('requestVideoFrameCallback' in HTMLVideoElement.prototype) {
      v.requestVideoFrameCallback((now, meta) => mark(meta.presentationTime || now));
    } else {
      v.addEventListener('playing', () => mark(performance.now()), { once: true });
    }
  }

  show(text, busy = false) {
    this.overlay.textContent = text;
    this.overlay.hidden = !text;
    this.overlay.classList.toggle('busy', busy);
  }

  setState(state) { this.root.dataset.state = state; }

  showVolume() {
    const v = this.video;
    const muted = v.muted || v.volume === 0;
    const mute = this.btn('mute');
    mute.setAttribute('aria-label', muted ? 'Unmute' : 'Mute');
    mute.setAttribute('aria-pressed', String(muted));
    $('use', mute).setAttribute('href', muted ? '#i-mute' : '#i-vol');
    this.volume.value = String(muted ? 0 : v.volume);
    this.btn('unmute').hidden = !muted || !this.played;
  }

  showPlaying() {
    const paused = this.video.paused;
    const b = this.btn('play');
    b.setAttribute('aria-label', paused ? 'Play' : 'Pause');
    $('use', b).setAttribute('href', paused ? '#i-play' : '#i-pause');
  }

  // layout shows the controls of a mode: live (badge, latency, rewind, live) or vod
  // (timeline and times).
  layout(mode) {
    const live = mode === 'live';
    for (const el of [this.badge, this.latencyEl, this.btn('back30'), this.btn('back60'), this.btn('live')]) el.hidden = !live;
    for (const el of [this.timeEl, this.seek, this.durEl]) el.hidden = live;
    this.btn('start').hidden = !live || !this.startSrc || this.fromStart || this.ended;
  }

  // setStart offers the live broadcast from its start (its EVENT playlist), or stops
  // offering it ("").
  setStart(src) {
    this.startSrc = src || '';
    this.layout(this.mode);
  }

  reset(mode) {
    if (this.hls) {
      this.hls.destroy();
      this.hls = null;
    }
    clearTimeout(this.bufferTimer);
    this.video.removeAttribute('src');
    this.video.load();
    this.mode = mode;
    this.ended = false;
    this.mediaRecoveries = 0;
    this.layout(mode);
    this.quality.hidden = true;
    delete this.root.dataset.latency;
    delete this.root.dataset.level;
    delete this.root.dataset.levels;
  }

  stop(message = '') {
    this.reset(this.mode);
    this.show(message);
  }

  // playLive plays a live LL-HLS stream from its multivariant playlist.
  playLive(src) {
    this.liveSrc = src;
    this.gone.clear();
    this.fromStart = false;
    this.root.dataset.source = 'live';
    this.reset('live');
    this.setState('loading');
    this.show('Loading the stream…', true);
    this.attach(src, {
      lowLatencyMode: true,
      liveDurationInfinity: true, // the rewindable window is video.seekable
      backBufferLength: 150,
      maxLiveSyncPlaybackRate: 1.5, // catch up after a stall instead of drifting behind
    });
  }

  // playFromStart plays the live broadcast from its first second: the whole run so far,
  // however long ago it left the DVR window. Live goes back to the live edge.
  playFromStart() {
    if (!this.startSrc) return;
    this.fromStart = true;
    this.root.dataset.source = 'start';
    this.reset('live');
    this.setState('loading');
    this.show('Loading the broadcast from the start…', true);
    this.attach(this.startSrc, { lowLatencyMode: false, startPosition: 0, liveDurationInfinity: true, backBufferLength: 150 });
  }

  // playVod plays a recording (a VOD playlist), from startAt seconds when given.
  playVod(src, startAt = 0) {
    this.reset('vod');
    this.setState('loading');
    this.show('Loading the recording…', true);
    this.startAt = startAt > 0 ? startAt : 0;
    this.attach(src, { lowLatencyMode: false, maxBufferLength: 30, startPosition: this.startAt || -1 });
  }

  // attach plays src with hls.js wherever the browser has Media Source Extensions (or
  // Safari's ManagedMediaSource), and with the browser's own HLS elsewhere (iPhones before
  // iOS 17.1). hls.js comes first even where canPlayType claims HLS (Chrome now does): it
  // is what gives low-latency catch-up, the latency figure and the same behaviour everywhere.
  //
  // resume, when given, continues what an earlier hls.js instance played (handOver).
  attach(src, config, resume = null) {
    const v = this.video;
    if (Hls.isSupported()) {
      this.hlsSrc = src;
      this.hlsConfig = config;
      const hls = new Hls({ enableWorker: false, ...config, ...(resume ? { autoStartLoad: false } : {}) });
      this.hls = hls;
      hls.on(Hls.Events.MANIFEST_PARSED, () => {
        for (let i = hls.levels.length - 1; i >= 0 && hls.levels.length > 1; i--) {
          if (this.gone.has(hls.levels[i].uri)) hls.removeLevel(i);
        }
        if (resume) {
          this.resume(hls, resume);
          return;
        }
        this.showLevels();
        this.play();
      });
      hls.on(Hls.Events.LEVEL_SWITCHED, (_, data) => this.showLevel(data.level));
      hls.on(Hls.Events.LEVEL_UPDATED, (_, data) => this.levelUpdated(hls, data));
      hls.on(Hls.Events.ERROR, (_, data) => this.hlsError(hls, data));
      hls.loadSource(src);
      hls.attachMedia(resume && resume.media ? resume.media : v);
    } else if (nativeHLS()) {
      v.src = src;
      v.addEventListener('loadedmetadata', () => {
        if (this.mode === 'vod' && this.startAt) v.currentTime = Math.min(this.startAt, v.duration || this.startAt);
        this.play();
      }, { once: true });
      v.addEventListener('error', () => this.nativeError(), { once: true });
    } else {
      this.setState('error');
      this.show('This browser cannot play this video: it has neither HLS nor Media Source Extensions.');
    }
  }

  // showLevels fills the quality menu with the renditions (Auto, then by resolution,
  // largest first), or hides it when there is one; choice is the level chosen (-1: auto).
  showLevels(choice = -1) {
    const levels = (this.hls && this.hls.levels) || [];
    const value = choice >= 0 && choice < levels.length ? String(choice) : 'auto';
    this.root.dataset.levels = String(levels.length);
    this.root.dataset.levelChoice = value;
    const order = levels.map((l, i) => ({ l, i })).sort((a, b) => (b.l.height - a.l.height) || (b.l.bitrate - a.l.bitrate));
    const options = [h('option', { value: 'auto' }, 'Auto')];
    for (const { l, i } of order) options.push(h('option', { value: String(i) }, l.height ? `${l.height}p` : `${Math.round(l.bitrate / 1000)} kbit/s`));
    this.quality.replaceChildren(...options);
    this.quality.value = value;
    this.quality.hidden = levels.length < 2;
    if (this.root.dataset.level) this.showLevel(Number(this.root.dataset.level));
  }

  // chosenURI is the rendition the menu forces, '' on auto.
  chosenURI() {
    const l = this.hls && this.quality.value !== 'auto' && this.hls.levels[Number(this.quality.value)];
    return l ? l.uri : '';
  }

  // levelUpdated follows each load of the live playlist being played: its end, and the
  // ladder it reports (lib/ladder.js says why from there).
  levelUpdated(hls, data) {
    if (this.mode !== 'live' || !data.details || hls !== this.hls) return;
    if (!data.details.live) {
      if (this.fromStart || hls.levels.length < 2) this.markEnded();
      else this.renditionEnded(hls, data.level);
      return;
    }
    if (this.fromStart) return;
    const change = ladderChange(hls, data.level, data.details);
    if (!change) return;
    if (change.joined.length) {
      this.handOverAtSegment(hls);
      return;
    }
    // Renditions left: hls.js drops levels in place. The one playing ends by its
    // playlist's end instead (renditionEnded).
    const choice = this.chosenURI();
    for (const i of change.left.sort((a, b) => b - a)) {
      if (i !== data.level && hls.levels.length > 1) hls.removeLevel(i);
    }
    const still = hls.levels.findIndex((l) => l.uri === choice);
    if (choice && still < 0) hls.loadLevel = -1; // the rendition chosen left: back to auto
    this.showLevels(still);
  }

  // handOverAtSegment hands over once hls.js starts loading a segment's first part and
  // what came before it is in the buffer, so that the buffer ends where a segment ends:
  // the new instance starts at the first part not yet loaded that begins with a key frame.
  // Handed over within a segment, it skipped the rest of that segment (and appends still
  // queued in the old instance are dropped by the transfer), and the picture froze over the
  // hole while the audio played on. Within 3 s in any case.
  handOverAtSegment(hls) {
    if (this.handOverDue) return;
    this.handOverDue = true;
    let start = -1; // where the segment being loaded begins
    const ready = () => {
      const b = this.video.buffered;
      return start >= 0 && b.length > 0 && b.end(b.length - 1) >= start - 0.05;
    };
    const go = () => {
      hls.off(Hls.Events.FRAG_LOADING, loading);
      hls.off(Hls.Events.BUFFER_APPENDED, appended);
      clearTimeout(timer);
      this.handOverDue = false;
      if (hls === this.hls) this.handOver();
    };
    const loading = (_, d) => {
      if (d.frag.type !== 'main' || (d.part && !d.part.independent)) return;
      start = d.part ? d.part.start : d.frag.start;
      if (ready()) go();
    };
    const appended = () => { if (ready()) go(); };
    hls.on(Hls.Events.FRAG_LOADING, loading);
    hls.on(Hls.Events.BUFFER_APPENDED, appended);
    const timer = setTimeout(go, 3000);
  }

  // handOver gives hls.js the stream's new ladder. hls.js cannot add a level to a running
  // instance, so a new one reads the multivariant playlist and takes over the old one's
  // MediaSource as it is (hls.js's transferMedia): what is buffered plays on, the video
  // element is never reset, and the new instance goes on loading where the buffer ends.
  // The playing level's playlist details go with it, so that its timeline is the old one.
  // At most one hand-over per few seconds: a ladder that flaps costs little.
  handOver() {
    const old = this.hls;
    const now = performance.now();
    if (!old || now < this.ladderQuiet) return;
    this.ladderQuiet = now + 5000;
    const playing = old.levels[old.currentLevel >= 0 ? old.currentLevel : old.loadLevel];
    const seeds = new Map();
    if (playing && playing.details) seeds.set(playing.uri, playing.details);
    for (const t of old.audioTracks || []) if (t.details && t.url) seeds.set(t.url, t.details);
    const resume = { choice: this.chosenURI(), playing: playing ? playing.uri : '', seeds, media: null };
    resume.media = old.transferMedia();
    old.destroy();
    this.hls = null;
    this.root.dataset.ladderUpdates = String(Number(this.root.dataset.ladderUpdates) + 1);
    this.attach(this.hlsSrc, this.hlsConfig, resume);
  }

  // resume starts a hand-over's new hls.js instance where the old one was.
  resume(hls, r) {
    for (const l of hls.levels) if (r.seeds.has(l.uri)) l.details = r.seeds.get(l.uri);
    for (const t of hls.audioTracks || []) if (r.seeds.has(t.url)) t.details = r.seeds.get(t.url);
    const choice = hls.levels.findIndex((l) => l.uri === r.choice);
    const playing = hls.levels.findIndex((l) => l.uri === r.playing);
    const start = choice >= 0 ? choice : playing;
    if (start >= 0) hls.startLevel = start;
    if (choice >= 0) hls.loadLevel = choice;
    if (playing >= 0) this.root.dataset.level = String(playing); // until hls.js switches
    else delete this.root.dataset.level;
    this.showLevels(choice);
    hls.startLoad(this.video.currentTime, true);
  }

  // renditionEnded: the playlist of a rendition being played ended. If the others go on,
  // only that rendition left (its encoder output stopped): play the stream's ladder
  // without it, from the live edge. Else the stream ended.
  async renditionEnded(hls, level) {
    const l = hls.levels[level];
    if (!l || this.gone.has(l.uri)) return;
    this.gone.add(l.uri);
    if (!(await streamLive(hls.levels, level))) {
      if (hls === this.hls) this.markEnded();
      return;
    }
    if (hls !== this.hls) return;
    this.root.dataset.ladderUpdates = String(Number(this.root.dataset.ladderUpdates) + 1);
    this.reset('live');
    this.attach(this.hlsSrc, this.hlsConfig);
  }

  // chooseLevel plays one rendition from now on, or leaves the choice to hls.js's
  // bandwidth estimate (auto).
  chooseLevel(value) {
    if (!this.hls) return;
    this.root.dataset.levelChoice = value;
    // nextLevel switches at the next fragment and keeps what plays now; -1 is hls.js's
    // ABR. currentLevel would flush the video buffer under the playhead as well, and
    // Chrome, playing on with the separate audio rendition, can freeze at the new
    // rendition's first frames.
    this.hls.nextLevel = value === 'auto' ? -1 : Number(value);
  }

  showLevel(level) {
    this.root.dataset.level = String(level);
    const l = this.hls && this.hls.levels[level];
    const auto = this.quality.options[0];
    if (auto) auto.textContent = l && l.height && this.quality.value === 'auto' ? `Auto (${l.height}p)` : 'Auto';
  }

  hlsError(hls, data) {
    // hls.js turns an exception in a listener (this player's too) into an error event.
    if (data.details === Hls.ErrorDetails.INTERNAL_EXCEPTION) console.error('player:', data.event, data.error);
    if (!data.fatal || hls !== this.hls) return;
    const code = data.response && data.response.code;
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR && this.mediaRecoveries < 2) {
      // Decoding hiccups: hls.js's documented recovery, then once more swapping audio codecs.
      if (this.mediaRecoveries++ === 1) hls.swapAudioCodec();
      hls.recoverMediaError();
      return;
    }
    hls.destroy();
    this.hls = null;
    if (this.fromStart && code === 404) {
      // Not kept after all (its recording failed to start): live is what there is.
      this.setStart('');
      this.playLive(this.liveSrc);
      return;
    }
    if (this.mode === 'live' && (code === 404 || code === 410)) {
      // The playlist is gone: the stream ended (a while ago) or never started.
      if (this.played || this.ended) this.markEnded(true); else this.offline();
      return;
    }
    this.fatalErrors++;
    this.root.dataset.fatalErrors = String(this.fatalErrors);
    this.root.dataset.lastError = data.details || String(data.type);
    this.setState('error');
    if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
      this.show(this.mode === 'live' ? 'Connection problem. Retrying…' : 'The recording cannot be loaded right now. Reload to try again.');
      if (this.mode === 'live') this.cb.onOffline('error');
    } else {
      this.show('This video cannot be played in this browser.');
    }
  }

  nativeError() {
    if (this.mode === 'live') {
      if (this.played) this.markEnded(true); else this.offline();
    } else {
      this.setState('error');
      this.show('The recording cannot be played right now.');
    }
  }

  offline() {
    this.setState('offline');
    this.show('This stream is offline. It starts playing here as soon as it goes live.');
    this.cb.onOffline('offline');
  }

  // markEnded notes that the live stream ended: its playlist got its end tag (what is
  // buffered still plays out), or it is gone (overlay: nothing more will play).
  markEnded(gone = false) {
    if (gone) this.show('The stream has ended. Thanks for watching!');
    if (this.ended) return;
    this.ended = true;
    this.btn('start').hidden = true;
    this.setState('ended');
    this.cb.onEnded();
  }

  mediaEnded() {
    if (this.mode === 'live') {
      this.markEnded(true);
    } else {
      this.show('');
    }
    this.showPlaying();
  }

  play() {
    const v = this.video;
    const p = v.play();
    if (!p) return;
    p.catch((err) => {
      if (err && err.name === 'NotAllowedError' && !v.muted) {
        // Browsers allow autoplay with sound only after the viewer interacted: start
        // muted and offer to unmute.
        v.muted = true;
        v.play().then(() => this.showVolume()).catch(() => this.show('Press play to start'));
      } else if (err && err.name === 'NotAllowedError') {
        this.show('Press play to start');
      }
    });
  }

  latency() {
    if (this.mode !== 'live' || this.ended) return null;
    if (this.hls) {
      const l = this.hls.latency;
      return Number.isFinite(l) && l > 0 ? l : null;
    }
    const r = this.video.seekable;
    return r.length ? Math.max(0, r.end(r.length - 1) - this.video.currentTime) : null;
  }

  liveEdge() {
    if (this.hls && Number.isFinite(this.hls.liveSyncPosition) && this.hls.liveSyncPosition > 0) {
      return this.hls.liveSyncPosition;
    }
    const r = this.video.seekable;
    return r.length ? Math.max(r.start(r.length - 1), r.end(r.length - 1) - 1) : this.video.currentTime;
  }

  // dvr is how far back the live window reaches, in seconds.
  dvr() {
    const r = this.video.seekable;
    return r.length ? r.end(r.length - 1) - r.start(0) : 0;
  }

  seekBy(seconds) {
    const v = this.video;
    const r = v.seekable;
    if (!r.length) return;
    if (this.mode === 'live') {
      // Keep clear of the window's oldest segment: it is about to slide out (not so from
      // the start).
      const start = this.fromStart ? r.start(0) : Math.min(r.start(0) + 3, this.liveEdge());
      v.currentTime = Math.max(start, Math.min(this.liveEdge(), v.currentTime + seconds));
    } else {
      v.currentTime = Math.max(0, Math.min(v.duration || 0, v.currentTime + seconds));
    }
    if (v.paused) this.play();
  }

  goLive() {
    this.video.currentTime = this.liveEdge();
    this.play();
  }

  toggleFullscreen() {
    if (document.fullscreenElement) {
      document.exitFullscreen().catch(() => {});
    } else if (this.root.requestFullscreen) {
      this.root.requestFullscreen().catch(() => {});
    } else if (this.video.webkitEnterFullscreen) {
      this.video.webkitEnterFullscreen(); // iPhone: the video element only
    }
  }

  tick() {
    const v = this.video;
    if (this.mode === 'live') {
      const lat = this.latency();
      const dvr = this.dvr();
      this.root.dataset.dvr = dvr.toFixed(1);
      if (this.ended) {
        this.badge.textContent = 'ENDED';
        this.badge.className = 'badge';
        this.latencyNum.textContent = '';
        this.latencyEl.hidden = true;
        return;
      }
      if (lat == null) return;
      const target = (this.hls && this.hls.targetLatency) || 3;
      const behind = lat > Math.max(4, target + 3);
      this.root.dataset.latency = lat.toFixed(2);
      this.latencyNum.textContent = `${lat.toFixed(1)} s`;
      this.latencyEl.hidden = false;
      this.badge.textContent = behind ? 'BEHIND' : 'LIVE';
      this.badge.className = behind ? 'badge' : 'badge live';
      this.btn('live').disabled = !behind && !this.fromStart;
      this.btn('back30').disabled = dvr < 8;
      this.btn('back60').disabled = dvr < 8;
      if (this.played && this.root.dataset.state !== 'error') this.setState(behind ? 'behind' : 'live');
    } else if (this.mode === 'vod') {
      const d = Number.isFinite(v.duration) ? v.duration : 0;
      if (d) {
        this.seek.max = String(d);
        this.durEl.textContent = clock(d);
      }
      if (!this.dragging) {
        this.seek.value = String(v.currentTime);
        this.timeEl.textContent = clock(v.currentTime);
      }
      this.seek.setAttribute('aria-valuetext', `${clock(v.currentTime)} of ${clock(d)}`);
      if (this.played && this.root.dataset.state !== 'error') this.setState('vod');
    }
  }
}
