// The pages with video: a room (live player, chat, past broadcasts), a stream of the config
// file (/watch/<name>) and a replay.
import { $, h, date, clock } from './lib/dom.js';
import { api } from './lib/api.js';
import { initSite } from './lib/site.js';
import { Player } from './lib/player.js';
import { Chat } from './lib/chat.js';
import { ReplayChat } from './lib/replaychat.js';
import { moderationPanel } from './lib/moderation.js';
import { shareButton, timeParam } from './lib/share.js';
import { clipForm, clipList, deleteClip } from './lib/clips.js';
import { livePreviews } from './lib/preview.js';

initSite();
const page = document.body.dataset.page;
if (page === 'watch') watchPage();
else if (page === 'room') roomPage();
else if (page === 'replay') replayPage();
else if (page === 'clip') clipPage();
else if (page === 'embed') embedPage();
else if (page === 'embedchat') embedChatPage();
else if (page === 'home') livePreviews($('[data-live-list]'));

// keepPlaybackAccess gets, and keeps fresh, the playback cookie a private room's media
// needs: the server sets it (httpOnly: this script never sees the token) for a few
// minutes and says when to ask again. It resolves to false, after calling onLost, when the
// viewer may not watch (any more): not invited, invitation revoked, signed out.
function keepPlaybackAccess(ref, onLost) {
  let lost = false;
  const renew = async () => {
    if (lost) return false;
    try {
      const out = await api('POST', `/api/v1/rooms/${encodeURIComponent(ref)}/playback`);
      if (out && out.required) setTimeout(renew, out.refresh_after_ms || 60000);
      return true;
    } catch (e) {
      if (e.status === 401 || e.status === 403 || e.status === 404) {
        lost = true;
        onLost(e);
        return false;
      }
      setTimeout(renew, 10000); // unreachable for now: the cookie still lasts minutes
      return true;
    }
  };
  return renew();
}

function setStatus(text, kind = '') {
  const el = $('[data-status]');
  if (!el) return;
  el.replaceChildren();
  if (text instanceof Node) el.append(text); else el.textContent = text;
  el.className = `status ${kind}`;
  el.dataset.kind = kind;
}

function watchPage() {
  const main = $('[data-watch]');
  let retry = 0;
  const player = new Player($('[data-player]', main), {
    onEnded: () => setStatus('The stream has ended.', 'ended'),
    onOffline: () => {
      setStatus('Offline: waiting for the stream to start…', 'offline');
      clearTimeout(retry);
      retry = setTimeout(() => player.playLive(main.dataset.hls), 4000);
    },
    onPlaying: () => setStatus(''),
  });
  player.playLive(main.dataset.hls);
  shareButton(main, () => location.origin + location.pathname);
}

function roomPage() {
  const main = $('[data-room]');
  const ref = main.dataset.ref; // the room's slug while public, its playback id otherwise
  const body = document.body.dataset;
  const me = body.userId ? { id: body.userId, handle: body.userHandle } : null;
  const badge = $('[data-room-badge]', main);
  const viewers = $('[data-viewer-count]', main);
  const streamTitle = $('[data-stream-title]', main);
  const roomName = $('[data-room-name]', main);
  let live = main.dataset.live === 'true';
  let broadcastID = main.dataset.broadcastId || ''; // the live broadcast the page knows of
  let watchingLive = false; // the player plays this room's live stream
  let endedWhileWatching = false;
  let latest = null; // newest broadcast
  let pollTimer = 0;
  let denied = false; // a private room that stopped admitting this viewer

  const player = new Player($('[data-player]', main), {
    onEnded: () => {
      endedWhileWatching = true;
      setStatus('The stream has ended. Its recording appears below once it is saved.', 'ended');
      setBadge(false);
      refreshBroadcasts();
    },
    onOffline: (why) => {
      if (why === 'offline') {
        watchingLive = false;
        showOffline();
      }
    },
    onPlaying: () => { if (watchingLive && !endedWhileWatching) setStatus(''); },
  });

  function setBadge(on) {
    badge.textContent = on ? 'LIVE' : 'OFFLINE';
    badge.className = on ? 'badge live' : 'badge';
  }

  function goLive() {
    watchingLive = true;
    endedWhileWatching = false;
    setBadge(true);
    setStatus('');
    player.playLive(main.dataset.hls);
    player.setStart(main.dataset.start);
  }

  // showOffline plays the latest recording, if there is one, and says the room is offline.
  async function showOffline() {
    setBadge(false);
    await refreshBroadcasts();
    if (live || watchingLive) return;
    const b = latest && latest.replay_url ? latest : null;
    if (b) {
      player.playVod(b.replay_url);
      setStatus(h('span', null, `Offline. Playing the latest broadcast, from ${date(b.started)}. `,
        h('a', { href: `/replay/${b.id}` }, 'Open it as a replay')), 'offline');
    } else {
      player.stop('This room is offline. The stream starts playing here as soon as it goes live.');
      player.setState('offline');
      setStatus('Offline.', 'offline');
    }
  }

  async function poll() {
    clearTimeout(pollTimer);
    if (denied) return;
    try {
      const room = await api('GET', `/api/v1/rooms/${encodeURIComponent(ref)}`);
      viewers.textContent = String(room.viewers);
      // The streamer may retitle the broadcast at any time: the heading follows.
      streamTitle.textContent = room.stream_title || room.title;
      roomName.hidden = !room.stream_title;
      roomName.textContent = `${room.title} · `;
      if (room.live) {
        // Went live, a new broadcast began, or the player gave up on a stream that is live.
        const fresh = room.broadcast_id !== broadcastID;
        const stuck = !watchingLive || player.root.dataset.state === 'error';
        live = true;
        broadcastID = room.broadcast_id || '';
        main.dataset.start = room.start_url || '';
        if (!player.fromStart) player.setStart(main.dataset.start);
        if (fresh || (stuck && !endedWhileWatching)) goLive();
      } else if (live) {
        live = false;
        setBadge(false);
        if (watchingLive && !endedWhileWatching) {
          // The room went offline: the player notices the playlist's end on its own.
          refreshBroadcasts();
        }
      }
    } catch {
      // Keep the page as it is; the next poll tries again.
    }
    pollTimer = setTimeout(poll, 5000);
  }

  // refreshBroadcasts lists past broadcasts; after a stream ended, it looks again every few
  // seconds until the newest one's recording is ready.
  let waitReplay = 0;
  async function refreshBroadcasts() {
    const list = $('[data-broadcasts]', main);
    try {
      const page = await api('GET', `/api/v1/rooms/${encodeURIComponent(ref)}/broadcasts?limit=20`);
      const past = page.broadcasts.filter((b) => b.ended);
      latest = past[0] || null;
      list.replaceChildren(...(past.length ? past.map(broadcastItem) : [h('li', { class: 'muted' }, 'No past broadcasts yet.')]));
      if (endedWhileWatching) {
        if (latest && latest.replay_url && page.broadcasts[0] === latest) {
          setStatus(h('span', null, 'The stream has ended. ', h('a', { href: `/replay/${latest.id}` }, 'Watch the replay')), 'ended');
        } else if (waitReplay++ < 60) {
          setTimeout(refreshBroadcasts, 3000);
        }
      }
    } catch (e) {
      list.replaceChildren(h('li', { class: 'error' }, `Past broadcasts cannot be listed: ${e.message}`));
    }
  }

  new Chat($('[data-chat]', main), {
    slug: ref,
    me,
    canModerate: main.dataset.canModerate === 'true',
    onViewers: (n) => { viewers.textContent = String(n); },
    onSystem: () => poll(), // "went live", "ended": look at the room now
  });
  const panel = $('[data-mod-panel]', main);
  if (panel && me) moderationPanel(panel, ref);
  shareButton(main, () => location.origin + location.pathname);
  clipForm(main, `/api/v1/rooms/${encodeURIComponent(ref)}/clips`);
  clipList(main, ref);

  const start = () => {
    if (live) goLive(); else showOffline();
    if (live) refreshBroadcasts();
    pollTimer = setTimeout(poll, 5000);
  };
  if (main.dataset.private === 'true') {
    keepPlaybackAccess(ref, () => {
      denied = true;
      clearTimeout(pollTimer);
      player.stop('You may not watch this room any more.');
      player.setState('error');
      setStatus('This room is private, and you may not watch it any more.', 'error');
    }).then((ok) => { if (ok) start(); });
  } else {
    start();
  }
}

function broadcastItem(b) {
  const dur = clock((b.duration_ms || 0) / 1000);
  const rec = b.recording;
  let what;
  if (b.replay_url) what = h('a', { href: `/replay/${b.id}`, class: 'button' }, 'Watch replay');
  else if (!rec) what = h('span', { class: 'muted' }, 'not recorded, or saving…');
  else what = h('span', { class: 'muted' }, rec.status === 'expired' ? 'recording expired' : 'recording being saved…');
  return h('li', { class: 'broadcast', dataset: { id: b.id } },
    h('span', null, h('strong', { class: 'broadcast-title' }, b.title), ' ',
      h('span', { class: 'muted' }, `${date(b.started)} · ${dur} · peak ${b.peak_viewers} watching`)),
    what);
}

function replayPage() {
  const main = $('[data-replay]');
  const root = $('[data-player]', main);
  if (!root || !main.dataset.src) return;
  const player = new Player(root, {
    onPlaying: () => setStatus(''),
  });
  // A shared link's ?t= starts the replay there.
  const startAt = timeParam();
  if (main.dataset.private === 'true') {
    keepPlaybackAccess(main.dataset.ref, () => {
      player.stop('You may not watch this recording any more.');
      player.setState('error');
    }).then((ok) => { if (ok) player.playVod(main.dataset.src, startAt); });
  } else {
    player.playVod(main.dataset.src, startAt);
  }
  // The link shared is to the moment being watched.
  shareButton(main, () => {
    const t = Math.floor(player.video.currentTime || 0);
    return `${location.origin}${location.pathname}${t > 0 ? `?t=${t}` : ''}`;
  });
  const total = Number(main.dataset.durationMs) / 1000;
  if (total) $('[data-duration]', root).textContent = clock(total);
  clipForm(main, `/api/v1/broadcasts/${encodeURIComponent(main.dataset.id)}/clips`,
    () => ({ at_ms: Math.round((player.video.currentTime || 0) * 1000) }));
  const chat = $('[data-replay-chat]', main);
  if (chat) new ReplayChat(chat, { id: main.dataset.id, video: player.video });
}

// embedPage is /embed/<room>, in another site's iframe: the player alone, live while the
// room is, else its latest recording; it switches to live when the room goes live.
function embedPage() {
  const main = $('[data-embed]');
  const ref = main.dataset.ref;
  let live = main.dataset.live === 'true';
  let watchingLive = false;
  let denied = false;
  const player = new Player($('[data-player]', main), {
    onEnded: () => setStatus('The stream has ended.', 'ended'),
    onOffline: (why) => { if (why === 'offline') { watchingLive = false; playLatest(); } },
    onPlaying: () => { if (watchingLive) setStatus('Live', 'live'); },
  });
  const goLive = () => {
    watchingLive = true;
    player.playLive(main.dataset.hls);
  };
  async function playLatest() {
    try {
      const page = await api('GET', `/api/v1/rooms/${encodeURIComponent(ref)}/broadcasts?limit=5`);
      const b = page.broadcasts.find((x) => x.ended && x.replay_url);
      if (live || watchingLive) return;
      if (b) {
        player.playVod(b.replay_url);
        setStatus(`Offline · the broadcast of ${date(b.started)}`, 'offline');
        main.dataset.replay = b.id;
        return;
      }
    } catch {
      // Said below: nothing to play for now.
    }
    player.stop('This room is offline. The stream starts playing here as soon as it goes live.');
    player.setState('offline');
    setStatus('Offline', 'offline');
  }
  async function poll() {
    if (denied) return;
    try {
      const room = await api('GET', `/api/v1/rooms/${encodeURIComponent(ref)}`);
      if (room.live && (!watchingLive || player.root.dataset.state === 'error')) { live = true; goLive(); }
      if (!room.live) live = false;
    } catch {
      // The next poll tries again.
    }
    setTimeout(poll, 10000);
  }
  const start = () => {
    if (live) goLive(); else playLatest();
    setTimeout(poll, 10000);
  };
  if (main.dataset.private === 'true') {
    keepPlaybackAccess(ref, () => {
      denied = true;
      player.stop('You may not watch this room any more.');
      player.setState('error');
    }).then((ok) => { if (ok) start(); });
  } else {
    start();
  }
}

// embedChatPage is /embed/<room>/chat: the room's chat alone, for another site's iframe.
function embedChatPage() {
  const main = $('[data-embed-chat]');
  const body = document.body.dataset;
  const me = body.userId ? { id: body.userId, handle: body.userHandle } : null;
  new Chat($('[data-chat]', main), { slug: main.dataset.ref, me, canModerate: false });
}

// clipPage is /clips/<id>: the clip plays at once.
function clipPage() {
  const main = $('[data-clip]');
  const player = new Player($('[data-player]', main), { onPlaying: () => setStatus('') });
  if (main.dataset.private === 'true') {
    keepPlaybackAccess(main.dataset.ref, () => {
      player.stop('You may not watch this clip any more.');
      player.setState('error');
    }).then((ok) => { if (ok) player.playVod(main.dataset.src); });
  } else {
    player.playVod(main.dataset.src);
  }
  shareButton(main, () => location.origin + location.pathname);
  const del = $('[data-delete-clip]', main);
  if (del) del.addEventListener('click', async () => { if (await deleteClip(main.dataset.id)) location.assign($('.crumbs a', main).href); });
}
