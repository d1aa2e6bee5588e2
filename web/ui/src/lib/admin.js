// The admin console: users (search, disable, make admin), rooms (search, take down), the
// audit trail with filters, every webhook delivery log with redelivery, and the health of
// the cluster's nodes. Everything goes through the admin API (/api/v1/admin/...).
import { h, flash, date, bytes, confirmDialog } from './dom.js';
import { api } from './api.js';
import { section, showError } from './forms.js';
import { deliveryRow } from './webhooks.js';

export function adminConsole(main) {
  const me = document.body.dataset.userId;
  main.replaceChildren(
    h('h1', null, 'Admin console'),
    h('nav', { class: 'tabs', 'aria-label': 'Console sections' },
      [['users', 'Users'], ['rooms', 'Rooms'], ['audit', 'Audit trail'], ['deliveries', 'Webhook deliveries'], ['health', 'Server health']]
        .map(([id, label]) => h('a', { href: `#${id}` }, label))),
    usersSection(me), roomsSection(), auditSection(), deliveriesSection(), healthSection());
}

// searchForm is a row of filter inputs and a button; run is called with its values.
function searchForm(attr, fields, run) {
  const form = h('form', { class: 'row filters', role: 'search', [`data-${attr}`]: '' }, fields, h('button', { type: 'submit' }, 'Search'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    run(new URLSearchParams([...new FormData(form)].filter(([, v]) => v !== '')));
  });
  return form;
}

// input is a filter field; ids are the section's (users-q, rooms-q).
const input = (section, name, label, placeholder) => [h('label', { class: 'sr-only', for: `${section}-${name}` }, label),
  h('input', { id: `${section}-${name}`, name, placeholder, autocapitalize: 'off', spellcheck: 'false' })];
const check = (name, label) => h('label', { class: 'check' }, h('input', { type: 'checkbox', name, value: 'true' }), ` ${label}`);

function table(headers, rows, empty) {
  if (!rows.length) return h('p', { class: 'muted' }, empty);
  return h('table', { class: 'log' }, h('thead', null, h('tr', null, headers.map((t) => h('th', null, t)))), h('tbody', null, rows));
}

// paged lists what load(params) returns, with a "More" button while there is a next page.
function paged(out, load, rowsOf, headers, empty) {
  let params = new URLSearchParams();
  const go = async (p, append) => {
    try {
      const page = await load(p);
      const rows = rowsOf(page);
      if (append) {
        out.querySelector('tbody')?.append(...rows);
      } else {
        out.replaceChildren(table(headers, rows, empty));
      }
      out.querySelector('[data-more]')?.remove();
      if (page.next) {
        out.append(h('button', { type: 'button', class: 'small', 'data-more': '', onclick: () => { const q = new URLSearchParams(p); q.set('cursor', page.next); go(q, true); } }, 'More'));
      }
    } catch (e) {
      out.replaceChildren(h('p', { class: 'error', role: 'alert' }, e.message));
    }
  };
  return (p) => { params = p || params; go(params, false); };
}

function usersSection(me) {
  const out = h('div', { 'data-users': '' });
  const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const row = (u) => {
    const set = async (change, question, text, label) => {
      if (question && !(await confirmDialog(question, text, label))) return;
      try {
        await api('PATCH', `/api/v1/admin/users/${encodeURIComponent(u.id)}`, change);
        refresh();
      } catch (e) { showError(err, e); }
    };
    const self = u.id === me;
    return h('tr', { dataset: { userHandle: u.handle } },
      h('td', null, `@${u.handle}`), h('td', null, u.email), h('td', null, date(u.created)),
      h('td', null, [u.admin ? h('span', { class: 'badge' }, 'admin') : null, u.disabled ? h('span', { class: 'badge live' }, 'disabled') : null]),
      h('td', { class: 'row' }, self ? h('span', { class: 'muted' }, 'you') : [
        h('button', { type: 'button', class: 'small', 'data-toggle-admin': u.handle,
          onclick: () => set({ admin: !u.admin }, u.admin ? `Take admin rights from @${u.handle}?` : `Make @${u.handle} an admin?`,
            u.admin ? 'They can no longer use the admin console.' : 'They can do everything you can here, including making other admins.', 'Confirm') },
        u.admin ? 'Remove admin' : 'Make admin'),
        h('button', { type: 'button', class: u.disabled ? 'small' : 'small danger', 'data-toggle-disabled': u.handle,
          onclick: () => (u.disabled ? set({ disabled: false }) : set({ disabled: true }, `Disable @${u.handle}?`,
            'They are signed out everywhere, their API tokens stop working, and their live streams stop on every node.', 'Disable')) },
        u.disabled ? 'Enable' : 'Disable')]));
  };
  const refresh = paged(out, (p) => api('GET', `/api/v1/admin/users?${p}`), (page) => page.users.map(row),
    ['Handle', 'Email', 'Since', '', ''], 'No accounts match.');
  refresh(new URLSearchParams());
  return h('section', { id: 'users' }, section('Users', 'users-h',
    searchForm('user-search', [...input('users', 'q', 'Handle or email', 'handle or email'), check('disabled', 'disabled'), check('admins', 'admins')], refresh),
    err, out));
}

function roomsSection() {
  const out = h('div', { 'data-admin-rooms': '' });
  const row = (r) => h('tr', { dataset: { roomSlug: r.slug } },
    h('td', null, h('a', { href: r.url }, r.title)), h('td', null, r.slug), h('td', null, `@${r.owner.handle}`), h('td', null, r.visibility),
    h('td', null, r.live ? h('span', { class: 'badge live' }, `LIVE · ${r.viewers}`) : ''),
    h('td', null, h('button', {
      type: 'button', class: 'small danger', 'data-take-down': r.slug,
      onclick: async () => {
        const ok = await confirmDialog(`Take down “${r.title}”?`, `The room of @${r.owner.handle} is deleted with its broadcasts and recordings; a live stream stops on every node.`, 'Take down');
        if (!ok) return;
        try {
          await api('DELETE', `/api/v1/admin/rooms/${encodeURIComponent(r.slug)}`);
          refresh();
        } catch (e) { flash(`Not taken down: ${e.message}`); }
      },
    }, 'Take down')));
  const refresh = paged(out, (p) => api('GET', `/api/v1/admin/rooms?${p}`), (page) => page.rooms.map(row),
    ['Title', 'Slug', 'Owner', 'Visibility', '', ''], 'No rooms match.');
  refresh(new URLSearchParams());
  return h('section', { id: 'rooms' }, section('Rooms', 'rooms-h',
    searchForm('room-search', [...input('rooms', 'q', 'Title or slug', 'title or slug'), check('live', 'live')], refresh), out));
}

function auditSection() {
  const out = h('div', { 'data-audit': '' });
  const details = (d) => (d ? Object.entries(d).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : v}`).join(' · ') : '');
  const row = (e) => h('tr', { dataset: { action: e.action } },
    h('td', null, date(e.at)), h('td', null, h('code', null, e.action)), h('td', null, `@${e.actor.handle}`),
    h('td', null, e.room ? e.room.slug : ''), h('td', null, e.target ? `${e.target.kind} ${e.target.name || e.target.id}` : ''),
    h('td', { class: 'muted' }, details(e.details)));
  const refresh = paged(out, (p) => api('GET', `/api/v1/admin/audit?${p}`), (page) => page.entries.map(row),
    ['When', 'Action', 'Who', 'Room', 'On', 'Details'], 'Nothing recorded matches.');
  refresh(new URLSearchParams());
  return h('section', { id: 'audit' }, section('Audit trail', 'audit-h',
    searchForm('audit-filter', [...input('audit', 'action', 'Action', 'action, e.g. user.* or chat.ban'),
      ...input('audit', 'actor', 'Who', 'who: handle'), ...input('audit', 'room', 'Room', 'room: slug or id')], refresh), out));
}

function deliveriesSection() {
  const out = h('div', { 'data-admin-deliveries': '' });
  const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
  let refresh;
  const row = (d) => {
    const tr = deliveryRow(d, () => api('POST', `/api/v1/admin/webhooks/deliveries/${encodeURIComponent(d.id)}/redeliver`), () => refresh(), err);
    tr.prepend(h('td', null, d.webhook_id === 'global' ? 'global' : d.room_slug || d.room_id));
    return tr;
  };
  refresh = paged(out, (p) => api('GET', `/api/v1/admin/webhooks/deliveries?${p}`), (page) => page.deliveries.map(row),
    ['Webhook', 'Event', 'Status', 'Attempts', 'Answer', 'Queued', ''], 'No deliveries match.');
  refresh(new URLSearchParams());
  const status = h('select', { id: 'deliveries-status', name: 'status' }, ['', 'pending', 'delivered', 'failed', 'canceled']
    .map((v) => h('option', { value: v }, v || 'any status')));
  return h('section', { id: 'deliveries' }, section('Webhook deliveries', 'deliveries-h',
    searchForm('delivery-filter', [...input('deliveries', 'room', 'Room', 'room: slug or id'),
      ...input('deliveries', 'webhook', 'Webhook', 'webhook id or global'),
      h('label', { class: 'sr-only', for: 'deliveries-status' }, 'Status'), status], refresh), err, out));
}

function healthSection() {
  const out = h('div', { 'data-server-health': '' }, h('p', { class: 'muted' }, 'Loading…'));
  const load = async () => {
    try {
      const s = await api('GET', '/api/v1/admin/health');
      const nodeRow = (n) => h('tr', { dataset: { node: n.id } },
        h('td', null, n.id === s.node ? `${n.id} (this one)` : n.id), h('td', null, n.url || '—'), h('td', null, date(n.started)),
        h('td', null, date(n.heartbeat)), h('td', null, String(n.streams)), h('td', null, String(n.viewers)),
        h('td', null, n.backlog.recordings ? `${n.backlog.recordings} recording(s), ${bytes(n.backlog.bytes_pending)} waiting` : 'none'));
      const liveRow = (r) => h('tr', { dataset: { liveRoom: r.slug } },
        h('td', null, h('a', { href: r.url }, r.title)), h('td', null, `@${r.owner.handle}`), h('td', null, String(r.viewers)),
        h('td', null, date(r.live_since)));
      out.replaceChildren(
        s.problems ? h('p', { class: 'notice error' }, s.problems.join('; ')) : '',
        h('h3', null, `Nodes (${s.nodes.length})`),
        table(['Node', 'Address', 'Up since', 'Last heartbeat', 'Streams', 'Viewers', 'Recording backlog'], s.nodes.map(nodeRow), 'No node reports.'),
        h('h3', null, `Live rooms (${s.live.length})`),
        table(['Room', 'Owner', 'Viewers', 'Since'], s.live.map(liveRow), 'Nothing is live.'),
        h('p', { class: 'muted' }, `This node: ${s.streams.length} stream(s) ingested, ${s.chat.sockets} chat socket(s); webhooks ${s.webhooks.delivered} delivered, `
          + `${s.webhooks.failed} failed, ${s.webhooks.pending} pending, ${s.webhooks.dropped} dropped; audit ${s.audit.queued} queued, `
          + `${s.audit.dropped} dropped. Updated ${new Date(s.at).toLocaleTimeString()}.`));
    } catch (e) {
      out.replaceChildren(h('p', { class: 'error', role: 'alert' }, `Health unavailable: ${e.message}`));
    }
  };
  load();
  setInterval(load, 10000);
  return h('section', { id: 'health' }, section('Server health', 'health-h',
    h('div', { class: 'row' }, h('button', { type: 'button', class: 'small', onclick: load }, 'Refresh')), out));
}
