// The streamer's dashboard: their rooms, creating and editing one, the OBS settings
// (server URL and stream key), live health, moderators, a private room's invited viewers
// and player links, and past broadcasts.
//
// The dashboard names rooms by slug (the owner's handle for a room); their public
// addresses are room.url (/rooms/<slug> while public, /watch/<playback id> otherwise).
//
// onair stores stream keys hashed, so a key can be shown only in the answer that made it
// (creating the room, rotating the key). The dashboard keeps such a key in memory for as
// long as the page is open, and otherwise offers to rotate it. Nothing is written to
// localStorage or sessionStorage but the ids of unfinished uploads (upload.js).
import { $, h, flash, since, date, clock, bitrate, bytes, confirmDialog, copyText } from './dom.js';
import { api } from './api.js';
import { section, showError } from './forms.js';
import { webhooksSection } from './webhooks.js';
import { uploadSection } from './upload.js';
import { multitrackSection } from './multitrack.js';

export function dashboard(main) {
  const keys = new Map(); // slug -> stream key shown during this page's life
  let timers = [];
  let reloadBroadcasts = null; // the room's past broadcasts list reloads itself with this

  const stopTimers = () => {
    for (const t of timers) clearInterval(t);
    timers = [];
  };

  const nav = (path) => {
    history.pushState(null, '', path);
    route();
  };

  main.addEventListener('click', (e) => {
    const a = e.target instanceof Element && e.target.closest('a[data-nav]');
    if (a && !e.ctrlKey && !e.metaKey && !e.shiftKey && e.button === 0) {
      e.preventDefault();
      nav(a.getAttribute('href'));
    }
  });
  window.addEventListener('popstate', route);
  route();

  function route() {
    stopTimers();
    flash('');
    const m = location.pathname.match(/^\/dashboard\/([^/]+)\/?$/);
    const view = m ? roomView(decodeURIComponent(m[1])) : listView();
    view.catch((e) => {
      if (e.status === 401) {
        location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
        return;
      }
      main.replaceChildren(h('h1', null, 'Dashboard'), h('p', { class: 'notice error', role: 'alert' }, e.message),
        h('p', null, h('a', { href: '/dashboard', 'data-nav': '' }, 'Back to your rooms')));
    });
  }

  function setTitle(text) { document.title = `${text} · onair`; }

  // ----- the list of rooms and the create form

  async function listView() {
    setTitle('Dashboard');
    const page = await api('GET', '/api/v1/rooms?owner=me&limit=100');
    const list = page.rooms.length
      ? h('ul', { class: 'cards', 'data-my-rooms': '' }, page.rooms.map((r) => h('li', { class: r.live ? 'card live' : 'card' },
        h('a', { href: `/dashboard/${r.slug}`, 'data-nav': '' }, r.live ? h('span', { class: 'badge live' }, 'LIVE') : null, ' ',
          h('strong', { class: 'title' }, r.title)),
        h('span', { class: 'muted' }, `${r.url} · ${r.visibility}${r.live ? ` · ${r.viewers} watching` : ''}`),
        h('span', null, h('a', { href: r.url }, 'Open the room page')))))
      : h('p', { class: 'muted empty' }, 'You have no rooms yet. Create one below to get a stream key for OBS.');
    main.replaceChildren(h('h1', null, 'Your rooms'), list, createForm());
  }

  function createForm() {
    const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const form = h('form', { class: 'stack card', 'data-create-room': '', novalidate: true },
      h('h2', null, 'Create a room'),
      h('label', { for: 'new-title' }, 'Title'),
      h('input', { id: 'new-title', name: 'title', required: true, maxlength: 120, placeholder: 'Friday night coding' }),
      h('label', { for: 'new-slug' }, 'Address ', h('span', { class: 'muted' }, '(3–40 lowercase letters, digits and -; cannot change later; unlisted and private rooms get an unguessable address instead)')),
      h('div', { class: 'row' }, h('span', { class: 'muted' }, `${location.host}/rooms/`),
        h('input', { id: 'new-slug', name: 'slug', required: true, maxlength: 40, pattern: '[a-z0-9][a-z0-9-]{2,39}', autocapitalize: 'off', spellcheck: 'false' })),
      h('label', { for: 'new-desc' }, 'Description ', h('span', { class: 'muted' }, '(optional)')),
      h('textarea', { id: 'new-desc', name: 'description', rows: 2, maxlength: 2000 }),
      h('label', { for: 'new-vis' }, 'Who finds it'),
      visibilitySelect('new-vis', 'public'),
      h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'recording', checked: true }), ' Record every broadcast (for replays)'),
      err,
      h('button', { type: 'submit', class: 'primary' }, 'Create room'));
    const title = $('#new-title', form);
    const slug = $('#new-slug', form);
    title.addEventListener('input', () => {
      if (slug.dataset.touched) return;
      slug.value = title.value.toLowerCase().normalize('NFKD').replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40);
    });
    slug.addEventListener('input', () => { slug.dataset.touched = '1'; });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = new FormData(form);
      const button = $('button[type=submit]', form);
      button.disabled = true;
      try {
        const out = await api('POST', '/api/v1/rooms', {
          slug: String(f.get('slug')).trim(), title: String(f.get('title')).trim(),
          description: String(f.get('description')).trim(), visibility: f.get('visibility'), recording: f.get('recording') === 'on',
        });
        keys.set(out.room.slug, out.stream_key);
        nav(`/dashboard/${out.room.slug}`);
      } catch (ex) {
        button.disabled = false;
        showError(err, ex, form);
      }
    });
    return form;
  }

  // ----- one room

  async function roomView(slug) {
    const room = await api('GET', `/api/v1/rooms/${encodeURIComponent(slug)}`);
    if (!room.rtmp_url) {
      main.replaceChildren(h('h1', null, room.title), h('p', { class: 'notice error' }, 'You do not manage this room.'),
        h('p', null, h('a', { href: room.url }, 'Open the room page')));
      return;
    }
    setTitle(`${room.title} · dashboard`);
    const heading = h('h1', null, room.title);
    main.replaceChildren(
      h('p', { class: 'crumbs' }, h('a', { href: '/dashboard', 'data-nav': '' }, '← Your rooms')),
      heading,
      h('p', null, h('a', { href: room.url, 'data-room-url': '' }, `Open the room page (${room.url})`)),
      h('div', { class: 'dash-grid' },
        streamSection(room),
        multitrackSection(room),
        streamTitleSection(room),
        healthSection(room),
        editSection(room, heading),
        moderatorsSection(room),
        invitedSection(room),
        room.visibility === 'private' ? playerLinkSection(room) : null,
        broadcastsSection(room),
        uploadSection(room, () => reloadBroadcasts?.()),
        webhooksSection(room),
        dangerSection(room)));
  }

  function streamSection(room) {
    const body = h('div', { 'data-key-block': '' });
    const urlInput = h('input', { id: 'rtmp-url', readonly: true, value: room.rtmp_url, 'data-rtmp-url': '' });
    const render = () => {
      const key = keys.get(room.slug);
      const rotate = h('button', { type: 'button', 'data-rotate-key': '', onclick: () => rotateKey(room, render) }, key ? 'Rotate key' : 'Rotate to get a new key');
      if (key) {
        const input = h('input', { id: 'stream-key', type: 'password', readonly: true, value: key, 'data-stream-key': '', autocomplete: 'off', spellcheck: 'false' });
        const reveal = h('button', { type: 'button', 'aria-pressed': 'false', 'aria-controls': 'stream-key', 'data-reveal-key': '' }, 'Reveal');
        reveal.addEventListener('click', () => {
          const show = input.type === 'password';
          input.type = show ? 'text' : 'password';
          reveal.textContent = show ? 'Hide' : 'Reveal';
          reveal.setAttribute('aria-pressed', String(show));
        });
        const copy = h('button', { type: 'button', 'data-copy-key': '' }, 'Copy');
        copy.addEventListener('click', () => copyText(key, copy));
        body.replaceChildren(
          h('label', { for: 'stream-key' }, 'Stream key'),
          h('div', { class: 'row' }, input, reveal, copy),
          h('p', { class: 'notice' }, 'This key is shown only now: onair stores it hashed and cannot show it again. Paste it into OBS; if you lose it or it leaks, rotate it.'),
          rotate);
      } else {
        body.replaceChildren(
          h('p', { class: 'label' }, 'Stream key'),
          h('p', { class: 'muted' }, 'onair keeps only a hash of your stream key, so it shows the key once: when the room is created and when the key is rotated. Rotate it to get a new one (the old one stops working).'),
          rotate);
      }
    };
    render();
    const copyURL = h('button', { type: 'button', 'data-copy-url': '' }, 'Copy');
    copyURL.addEventListener('click', () => copyText(room.rtmp_url, copyURL));
    const servers = [h('label', { for: 'rtmp-url' }, room.rtmps_url ? 'Server (unencrypted)' : 'Server'), h('div', { class: 'row' }, urlInput, copyURL)];
    if (room.rtmps_url) {
      // Encrypted ingest first: the stream key then never crosses the network in the clear.
      const tlsInput = h('input', { id: 'rtmps-url', readonly: true, value: room.rtmps_url, 'data-rtmps-url': '' });
      const copyTLS = h('button', { type: 'button', 'data-copy-rtmps-url': '' }, 'Copy');
      copyTLS.addEventListener('click', () => copyText(room.rtmps_url, copyTLS));
      servers.unshift(h('label', { for: 'rtmps-url' }, 'Server (encrypted, RTMPS)'), h('div', { class: 'row' }, tlsInput, copyTLS));
    }
    return section('Stream with OBS', 'obs-h',
      h('p', { class: 'muted' }, 'In OBS: Settings → Stream → Service “Custom…”, then paste a server and the stream key. Set the keyframe interval to 1 s.'),
      ...servers,
      body);
  }

  async function rotateKey(room, render) {
    const ok = await confirmDialog('Rotate the stream key?',
      'The current key stops working at once: a stream using it is disconnected, and OBS needs the new key to go live again.', 'Rotate key');
    if (!ok) return;
    try {
      const out = await api('POST', `/api/v1/rooms/${encodeURIComponent(room.slug)}/stream-key`);
      keys.set(room.slug, out.stream_key);
      render();
      $('[data-reveal-key]')?.focus();
    } catch (e) {
      flash(`The key was not rotated: ${e.message}`);
    }
  }

  // streamTitleSection sets the title of the coming or current broadcast, Twitch's
  // "stream title": a live broadcast changes title at once, a past one keeps its own.
  function streamTitleSection(room) {
    const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const ok = h('p', { class: 'ok', role: 'status' });
    const input = h('input', { id: 'stream-title', name: 'stream_title', maxlength: 100, value: room.stream_title || '', placeholder: room.title });
    const form = h('form', { class: 'stack', novalidate: true, 'data-stream-title-form': '' },
      h('label', { for: 'stream-title' }, 'Title of the broadcast ', h('span', { class: 'muted' }, '(empty: the room’s title)')),
      h('div', { class: 'row' }, input, h('button', { type: 'submit', class: 'primary' }, 'Set title')), err, ok);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      ok.textContent = '';
      try {
        const r = await api('PATCH', `/api/v1/rooms/${encodeURIComponent(room.slug)}`, { stream_title: input.value.trim() });
        Object.assign(room, r);
        input.value = r.stream_title;
        err.hidden = true;
        ok.textContent = r.live ? 'Saved: viewers see it now.' : 'Saved: your next broadcast takes it.';
      } catch (ex) {
        showError(err, ex, form);
      }
    });
    return section('Broadcast title', 'stream-title-h',
      h('p', { class: 'muted' }, 'What viewers see above the stream. Change it any time, live or not; each past broadcast keeps the title it ended with.'),
      form);
  }

  function healthSection(room) {
    const fields = [
      ['status', 'Status'], ['uptime', 'Uptime'], ['viewers', 'Viewers'], ['bitrate', 'Bitrate'], ['fps', 'Frame rate'],
      ['video', 'Video'], ['audio', 'Audio'], ['recording', 'Recording'],
    ];
    const dl = h('dl', { class: 'health', 'data-health': '' });
    const values = {};
    for (const [k, label] of fields) {
      values[k] = h('dd', { 'data-health-field': k }, '…');
      dl.append(h('div', null, h('dt', null, label), values[k]));
    }
    const note = h('p', { class: 'muted', role: 'status' }, 'Refreshed every 3 s.');
    // What the stream's settings cost viewers (a key frame interval longer than the
    // segments), from the server.
    const warnings = h('ul', { class: 'form-error', 'data-health-warnings': '', hidden: true });
    // The quality ladder, when the encoder sends renditions (simulcast or multitrack).
    const ladder = h('table', { class: 'ladder', 'data-health-renditions': '', hidden: true });
    let prev = null;
    const set = (k, v) => { values[k].textContent = v; };
    const poll = async () => {
      try {
        const s = await api('GET', `/api/v1/rooms/${encodeURIComponent(room.slug)}/health`);
        let rate = s.bitrate;
        let fps = s.fps;
        if (prev && prev.here && s.here && prev.run_id === s.run_id) {
          const dt = (Date.parse(s.at) - Date.parse(prev.at)) / 1000;
          if (dt > 0.5) {
            rate = ((s.bytes - prev.bytes) * 8) / dt;
            fps = (s.video_frames - prev.video_frames) / dt;
          }
        }
        prev = s;
        dl.dataset.live = String(s.live);
        set('status', s.live ? (s.here ? 'Live' : 'Live (on another onair node)') : 'Offline');
        set('uptime', s.live ? since(s.uptime_ms) : '—');
        set('viewers', String(s.viewers));
        set('bitrate', s.here ? bitrate(rate) : '—');
        set('fps', s.here && s.video ? `${fps.toFixed(1)} fps` : '—');
        set('video', s.video ? `${s.video.codec.toUpperCase()} ${s.video.width}×${s.video.height}` : '—');
        set('audio', s.audio ? `${s.audio.codec.toUpperCase()} ${(s.audio.sample_rate / 1000).toFixed(1)} kHz${s.audio.channels ? `, ${s.audio.channels} ch` : ''}` : '—');
        set('recording', s.live ? (s.recording ? 'Recording this broadcast' : 'Not recording') : (room.recording ? 'On: broadcasts are recorded' : 'Off'));
        const lines = [...(s.warnings || [])];
        if (s.publish_error) {
          lines.unshift(`Publish refused at ${new Date(s.publish_error.at).toLocaleTimeString()}: ${s.publish_error.reason}`);
        }
        warnings.replaceChildren(...lines.map((w) => h('li', { 'data-publish-error': s.publish_error && w === lines[0] ? '' : null }, w)));
        warnings.hidden = !lines.length;
        const rungs = s.renditions || [];
        ladder.replaceChildren(
          h('caption', null, 'Renditions viewers choose from'),
          h('tr', null, ...['Rendition', 'Resolution', 'Bitrate', 'Frame rate', 'Codec'].map((c) => h('th', { scope: 'col' }, c))),
          ...rungs.map((r) => h('tr', { 'data-rendition': r.name || 'main' },
            h('td', null, r.name ? r.name + (r.aligned ? '' : ' (checking key frames)') : 'main'),
            h('td', null, r.width ? `${r.width}×${r.height}` : '—'),
            h('td', null, bitrate(r.bitrate)), h('td', null, `${r.fps.toFixed(1)} fps`), h('td', null, r.codec.toUpperCase()))));
        ladder.hidden = !rungs.length;
        note.textContent = `Updated ${new Date().toLocaleTimeString()} · refreshed every 3 s.`;
      } catch (e) {
        note.textContent = `Health unavailable: ${e.message}`;
      }
    };
    poll();
    timers.push(setInterval(poll, 3000));
    return section('Live health', 'health-h', dl, ladder, warnings, note);
  }

  function editSection(room, heading) {
    const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const ok = h('p', { class: 'ok', role: 'status' });
    const vis = visibilitySelect('edit-vis', room.visibility);
    const form = h('form', { class: 'stack', novalidate: true, 'data-edit-room': '' },
      h('label', { for: 'edit-title' }, 'Title'),
      h('input', { id: 'edit-title', name: 'title', required: true, maxlength: 120, value: room.title }),
      h('label', { for: 'edit-desc' }, 'Description'),
      h('textarea', { id: 'edit-desc', name: 'description', rows: 3, maxlength: 2000, value: room.description }),
      h('label', { for: 'edit-vis' }, 'Who finds it'), vis,
      h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'recording', checked: room.recording }), ' Record every broadcast'),
      h('label', { for: 'edit-ret' }, 'Keep recordings for ', h('span', { class: 'muted' }, '(days; 0 uses the server default)')),
      h('input', { id: 'edit-ret', name: 'retention_days', type: 'number', min: 0, max: 3650, value: String(room.retention_days || 0) }),
      err, ok,
      h('button', { type: 'submit', class: 'primary' }, 'Save'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = new FormData(form);
      ok.textContent = '';
      try {
        const r = await api('PATCH', `/api/v1/rooms/${encodeURIComponent(room.slug)}`, {
          title: String(f.get('title')).trim(), description: String(f.get('description')).trim(),
          visibility: f.get('visibility'), recording: f.get('recording') === 'on',
          retention_days: Number(f.get('retention_days')) || 0,
        });
        const moved = r.url !== room.url || r.visibility !== room.visibility;
        Object.assign(room, r);
        heading.textContent = r.title;
        err.hidden = true;
        ok.textContent = 'Saved.';
        // A new visibility moves the room's page and changes what the dashboard shows.
        if (moved) route();
      } catch (ex) {
        showError(err, ex, form);
      }
    });
    return section('Room details', 'edit-h', form);
  }

  // membersSection lists one of a room's lists of users (moderators, invited viewers)
  // with a button to remove each and a form to add one by handle.
  function membersSection(room, { key, path, title, id, note, empty, add, remove, removeLabel, list: listAttr, form: formAttr, input: inputID }) {
    const list = h('ul', { class: 'plain', [`data-${listAttr}`]: '' });
    const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const base = `/api/v1/rooms/${encodeURIComponent(room.slug)}/${path}`;
    const render = () => {
      const members = room[key] || [];
      list.replaceChildren(...(members.length ? members.map((m) => h('li', { class: 'row' },
        h('span', null, `@${m.handle}`),
        h('button', {
          type: 'button', class: 'small', 'aria-label': removeLabel(m.handle), 'data-remove': m.handle,
          onclick: async () => {
            try {
              Object.assign(room, { [key]: [] }, await api('DELETE', `${base}/${encodeURIComponent(m.handle)}`));
              render();
            } catch (ex) { showError(err, ex); }
          },
        }, remove))) : [h('li', { class: 'muted' }, empty)]));
    };
    render();
    const input = h('input', { id: inputID, name: 'handle', required: true, placeholder: 'handle', autocapitalize: 'off', spellcheck: 'false' });
    const form = h('form', { class: 'row', novalidate: true, [`data-${formAttr}`]: '' },
      h('label', { class: 'sr-only', for: inputID }, `Handle to add to the ${title.toLowerCase()}`), input,
      h('button', { type: 'submit' }, add));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const handle = input.value.trim().replace(/^@/, '');
      if (!handle) return;
      try {
        Object.assign(room, { [key]: [] }, await api('POST', base, { handle }));
        input.value = '';
        err.hidden = true;
        render();
      } catch (ex) {
        showError(err, ex, form);
      }
    });
    return section(title, id, h('p', { class: 'muted' }, note), list, form, err);
  }

  function moderatorsSection(room) {
    return membersSection(room, {
      key: 'moderators', path: 'moderators', title: 'Moderators', id: 'mods-h',
      list: 'moderators', form: 'add-moderator', input: 'mod-handle',
      note: 'Moderators delete messages, time out and ban people in the chat.',
      empty: 'No moderators yet. You moderate your room yourself.', add: 'Add moderator',
      remove: 'Remove', removeLabel: (handle) => `Remove @${handle} as moderator`,
    });
  }

  // invitedSection lists who may watch the room while it is private, besides its owner,
  // moderators and admins. Revoking someone stops their player within minutes and closes
  // their chat.
  function invitedSection(room) {
    return membersSection(room, {
      key: 'invited', path: 'viewers', title: 'Invited viewers', id: 'invited-h',
      list: 'invited', form: 'invite', input: 'invite-handle',
      note: room.visibility === 'private'
        ? 'Only they, your moderators and admins can watch this room and read its chat. Revoking someone stops their player within five minutes.'
        : 'These people can watch the room once you make it private. While it is not, they are not needed.',
      empty: 'Nobody is invited yet.', add: 'Invite',
      remove: 'Revoke', removeLabel: (handle) => `Revoke the invitation of @${handle}`,
    });
  }

  // playerLinkSection makes links for players outside onair (an embed on your site, a TV
  // app): the room's HLS address with a playback token that expires when you choose.
  function playerLinkSection(room) {
    const ttl = h('select', { id: 'link-ttl', name: 'ttl' },
      h('option', { value: '3600' }, '1 hour'),
      h('option', { value: '86400', selected: true }, '1 day'),
      h('option', { value: '604800' }, '7 days'));
    const out = h('div', { 'data-player-link': '' });
    const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const form = h('form', { class: 'row', novalidate: true },
      h('label', { for: 'link-ttl' }, 'Valid for'), ttl, h('button', { type: 'submit' }, 'Make a player link'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        const t = await api('POST', `/api/v1/rooms/${encodeURIComponent(room.slug)}/playback-tokens`, { ttl_seconds: Number(ttl.value) });
        const link = `${location.origin}${t.hls_url}`;
        const input = h('input', { id: 'player-link', readonly: true, value: link, autocomplete: 'off', spellcheck: 'false' });
        const copy = h('button', { type: 'button' }, 'Copy');
        copy.addEventListener('click', () => copyText(link, copy));
        out.replaceChildren(h('label', { for: 'player-link' }, `HLS address, until ${date(t.expires)}`), h('div', { class: 'row' }, input, copy),
          h('p', { class: 'muted' }, 'Anyone with this link can watch until it expires: share it only with the player it is for.'));
        err.hidden = true;
      } catch (ex) {
        showError(err, ex);
      }
    });
    return section('Player links', 'links-h',
      h('p', { class: 'muted' }, 'For players outside onair. Links cannot be taken back: keep them short-lived.'), form, out, err);
  }

  // renameButton edits a past broadcast's title in place (a live one follows the room's
  // stream title).
  function renameButton(b, title) {
    const btn = h('button', { type: 'button', class: 'small', 'data-rename-broadcast': b.id }, 'Rename');
    btn.addEventListener('click', () => {
      const input = h('input', { value: title.textContent, maxlength: 100, 'aria-label': 'Broadcast title', 'data-broadcast-title-input': '' });
      const form = h('form', { class: 'row' }, input, h('button', { type: 'submit', class: 'small' }, 'Save'));
      const done = (text) => { title.textContent = text; form.replaceWith(title); btn.hidden = false; };
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        try {
          const saved = await api('PATCH', `/api/v1/broadcasts/${encodeURIComponent(b.id)}`, { title: input.value });
          done(saved.title);
        } catch (e) {
          flash(`The title was not changed: ${e.message}`);
        }
      });
      input.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') done(title.textContent); });
      title.replaceWith(form);
      btn.hidden = true;
      input.focus();
    });
    return btn;
  }

  function broadcastsSection(room) {
    const list = h('ul', { class: 'broadcasts', 'data-dash-broadcasts': '' }, h('li', { class: 'muted' }, 'Loading…'));
    const load = async () => {
      try {
        const page = await api('GET', `/api/v1/rooms/${encodeURIComponent(room.slug)}/broadcasts?limit=50`);
        list.replaceChildren(...(page.broadcasts.length ? page.broadcasts.map(item) : [h('li', { class: 'muted' }, 'No broadcasts yet.')]));
      } catch (e) {
        list.replaceChildren(h('li', { class: 'error' }, `Broadcasts cannot be listed: ${e.message}`));
      }
    };
    const item = (b) => {
      const rec = b.recording;
      const status = !b.ended ? 'live now' : b.source === 'upload' ? `uploaded, ${bytes(rec?.size)}`
        : b.replay_url ? `recorded, ${bytes(rec.size)}` : rec ? `recording ${rec.status}` : 'not recorded';
      const del = h('button', { type: 'button', class: 'small danger', 'data-delete-broadcast': b.id }, 'Delete');
      del.addEventListener('click', async () => {
        const ok = await confirmDialog('Delete this broadcast?', `The broadcast of ${date(b.started)} and its recording are deleted for good.`, 'Delete');
        if (!ok) return;
        try {
          await api('DELETE', `/api/v1/broadcasts/${encodeURIComponent(b.id)}`);
          li.remove();
        } catch (e) {
          flash(`The broadcast was not deleted: ${e.message}`);
        }
      });
      const title = h('strong', null, b.title);
      const li = h('li', { class: 'broadcast', dataset: { id: b.id } },
        h('span', null, title, ' ',
          h('span', { class: 'muted' }, `${date(b.started)} · ${clock((b.duration_ms || 0) / 1000)} · peak ${b.peak_viewers} watching · ${status}`)),
        h('span', { class: 'row' }, b.replay_url ? h('a', { class: 'button small', href: `/replay/${b.id}` }, 'Replay') : null,
          b.ended ? renameButton(b, title) : null, b.ended ? del : null));
      return li;
    };
    load();
    reloadBroadcasts = load;
    timers.push(setInterval(load, 30000));
    return section('Past broadcasts', 'past-h', list);
  }

  function dangerSection(room) {
    const del = h('button', { type: 'button', class: 'danger' }, 'Delete this room');
    del.addEventListener('click', async () => {
      const ok = await confirmDialog(`Delete “${room.title}”?`, 'The room, its chat and its past broadcasts with their recordings are deleted for good. A live stream is stopped.', 'Delete room');
      if (!ok) return;
      try {
        await api('DELETE', `/api/v1/rooms/${encodeURIComponent(room.slug)}`);
        keys.delete(room.slug);
        nav('/dashboard');
      } catch (e) {
        flash(`The room was not deleted: ${e.message}`);
      }
    });
    return section('Delete the room', 'danger-h', del);
  }
}

function visibilitySelect(id, current) {
  return h('select', { id, name: 'visibility' },
    h('option', { value: 'public', selected: current === 'public' }, 'Public: listed on the home page'),
    h('option', { value: 'unlisted', selected: current === 'unlisted' }, 'Unlisted: only people with the link'),
    h('option', { value: 'private', selected: current === 'private' }, 'Private: only people you invite'));
}

