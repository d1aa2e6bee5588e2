// The room's chat over its websocket (protocol: chat/doc.go). Every text from the server
// is put in the page as text (textContent / text nodes), never parsed as HTML.
import { $, h, timeOfDay, since } from './dom.js';
import { api } from './api.js';

const maxShown = 300;
// Older pages scrolled back to are kept up to maxKept messages; beyond, the top is not
// loaded further.
const maxKept = 2000;
const olderPage = 50;

export class Chat {
  constructor(root, { slug, me, canModerate, onViewers, onSystem }) {
    this.root = root;
    this.slug = slug;
    this.me = me; // {id, handle} or null
    this.canModerate = canModerate;
    this.onViewers = onViewers || (() => {});
    this.onSystem = onSystem || (() => {});
    this.log = $('[data-chat-log]', root);
    this.stateEl = $('[data-chat-state]', root);
    this.note = $('[data-chat-note]', root);
    this.form = $('[data-chat-form]', root);
    this.errorEl = $('[data-chat-error]', root);
    this.text = this.form && $('textarea', this.form);
    this.sendButton = this.form && $('button[type=submit]', this.form);
    this.ws = null;
    this.backoff = 1000;
    this.nonce = 0;
    this.pending = new Map(); // nonce -> text
    this.blockedUntil = 0;
    this.blockTimer = 0;
    this.older = 'none'; // 'more', 'loading' or 'none': what scrolling to the top does
    this.log.addEventListener('scroll', () => { if (this.log.scrollTop < 40) this.loadOlder(); });
    if (this.form) this.wireForm();
    this.connect();
  }

  wireForm() {
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.send();
    });
    this.text.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.send();
      }
    });
  }

  connect() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}/api/v1/rooms/${encodeURIComponent(this.slug)}/chat`);
    this.ws = ws;
    this.setState('connecting…');
    ws.addEventListener('open', () => {
      this.backoff = 1000;
      this.setState('connected');
    });
    ws.addEventListener('message', (e) => {
      let f;
      try { f = JSON.parse(e.data); } catch { return; }
      this.frame(f);
    });
    ws.addEventListener('close', (e) => {
      if (this.ws !== ws) return;
      if (e.code === 4403) {
        // A private room whose owner revoked this viewer's invitation (or made it private).
        this.setState('closed · you may no longer be in this room');
        for (const [, text] of this.pending) this.restore(text);
        this.pending.clear();
        return;
      }
      this.setState(`disconnected · reconnecting in ${Math.round(this.backoff / 1000)} s`);
      for (const [, text] of this.pending) this.restore(text);
      this.pending.clear();
      setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 15000);
    });
  }

  setState(text) {
    this.stateEl.textContent = text;
    this.root.dataset.chatState = text.split(' ')[0];
  }

  frame(f) {
    switch (f.type) {
      case 'batch':
        for (const e of f.events || []) if (e && e.type !== 'batch') this.frame(e);
        break;
      case 'history':
        this.log.replaceChildren();
        for (const m of f.messages || []) this.add(m);
        this.slowMode(f.slow_mode_ms || 0);
        this.scroll(true);
        this.setOlder(f.messages && f.messages.length ? 'more' : 'none');
        this.fill();
        break;
      case 'message':
      case 'system':
        this.add(f);
        if (f.type === 'system') this.onSystem(f);
        break;
      case 'deleted':
        for (const li of this.log.querySelectorAll('li[data-id]')) {
          if (li.dataset.id === f.id) li.remove();
        }
        break;
      case 'user_timeout':
        this.notice(`@${f.handle || 'someone'} is timed out for ${since(f.duration_ms || 0)}${f.reason ? ` (${f.reason})` : ''}.`);
        if (this.isMe(f.user_id)) this.block(Date.parse(f.until) || Date.now() + (f.duration_ms || 0), 'You are timed out');
        break;
      case 'user_banned':
        this.notice(`@${f.handle || 'someone'} is banned from this chat${f.reason ? ` (${f.reason})` : ''}.`);
        if (this.isMe(f.user_id)) this.block(Infinity, 'You are banned from this chat');
        break;
      case 'user_unbanned':
        this.notice(`@${f.handle || 'someone'} may chat again.`);
        if (this.isMe(f.user_id)) this.block(0);
        break;
      case 'slow_mode':
        this.slowMode(f.interval_ms || 0);
        break;
      case 'viewers':
        this.onViewers(f.count);
        break;
      case 'ack':
        this.pending.delete(f.nonce);
        this.busy(false);
        break;
      case 'error':
        this.error(f);
        break;
      default:
    }
  }

  isMe(userID) { return this.me && userID === this.me.id; }

  slowMode(ms) {
    if (!this.note) return;
    this.note.hidden = !ms;
    this.note.textContent = ms ? `Slow mode: one message every ${since(ms)} per person.` : '';
  }

  atBottom() {
    return this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 40;
  }

  scroll(force) {
    if (force || this.stick) this.log.scrollTop = this.log.scrollHeight;
  }

  setOlder(state) {
    this.older = state;
    this.root.dataset.chatOlder = state;
  }

  // oldestID is the cursor of the page before what the log shows.
  oldestID() {
    const li = this.log.querySelector('li[data-id]:not([data-id=""])');
    return li ? li.dataset.id : '';
  }

  // loadOlder prepends the page of messages just older than the log's first, keeping
  // what is in view where it is.
  async loadOlder() {
    const before = this.oldestID();
    if (this.older !== 'more' || !before) return;
    if (this.log.children.length >= maxKept) {
      this.setOlder('none');
      return;
    }
    this.setOlder('loading');
    let page;
    try {
      page = await api('GET', `/api/v1/rooms/${encodeURIComponent(this.slug)}/chat/history?limit=${olderPage}&before=${encodeURIComponent(before)}`);
    } catch (e) {
      this.setOlder('more'); // scrolling up again retries
      this.showError(`Older messages could not be loaded: ${e.message}`);
      return;
    }
    if (this.oldestID() !== before) { // the log was replaced meanwhile (reconnected)
      this.setOlder('more');
      return;
    }
    const height = this.log.scrollHeight;
    const top = this.log.scrollTop;
    const first = this.log.firstElementChild;
    for (const m of page.messages || []) {
      if (!this.log.querySelector(`li[data-id="${CSS.escape(m.id)}"]`)) this.log.insertBefore(this.item(m), first);
    }
    this.log.scrollTop = top + (this.log.scrollHeight - height);
    this.setOlder(page.next_before ? 'more' : 'none');
    this.fill();
  }

  // fill loads older pages while the log is too short to scroll (no way to ask for them).
  fill() {
    if (this.older === 'more' && this.log.scrollHeight <= this.log.clientHeight) this.loadOlder();
  }

  item(m) {
    const at = h('time', { datetime: m.at }, timeOfDay(m.at));
    let li;
    if (m.type === 'system') {
      li = h('li', { class: 'sys', dataset: { id: m.id || '' } }, h('span', { class: 'text', text: m.text }), at);
    } else {
      const mine = this.isMe(m.user_id);
      li = h('li', { class: mine ? 'msg mine' : 'msg', dataset: { id: m.id, userId: m.user_id || '', handle: m.handle || '' } },
        h('span', { class: 'who', text: `@${m.handle}` }), ' ',
        h('span', { class: 'text', text: m.text }), ' ', at);
      if (this.canModerate && !mine) li.append(this.modMenu(m));
    }
    return li;
  }

  add(m) {
    if (m.id && this.log.querySelector(`li[data-id="${CSS.escape(m.id)}"]`)) return;
    this.stick = this.atBottom();
    this.log.append(this.item(m));
    // Whoever reads the live end keeps maxShown messages; whoever scrolled back, up to maxKept.
    const keep = this.stick ? maxShown : maxKept;
    if (this.log.children.length > keep) {
      while (this.log.children.length > keep) this.log.firstElementChild.remove();
      if (this.older === 'none') this.setOlder('more');
    }
    this.scroll(false);
  }

  notice(text) {
    this.stick = this.atBottom();
    this.log.append(h('li', { class: 'sys' }, h('span', { class: 'text', text })));
    this.scroll(false);
  }

  // modMenu is the moderation menu of one message: a <details> disclosure, so it opens and
  // closes with the keyboard like any other.
  modMenu(m) {
    const details = h('details', { class: 'mod' });
    const act = (label, fn) => h('button', {
      type: 'button',
      onclick: async () => {
        details.open = false;
        try {
          await fn();
        } catch (e) {
          this.showError(`${label} failed: ${e.message}`);
        }
      },
    }, label);
    const base = `/api/v1/rooms/${encodeURIComponent(this.slug)}/chat`;
    details.append(
      h('summary', { 'aria-label': `Moderate @${m.handle}'s message`, title: 'Moderate' }, '⋯'),
      h('div', { class: 'menu', role: 'group', 'aria-label': 'Moderation' },
        act('Delete message', () => api('DELETE', `${base}/messages/${encodeURIComponent(m.id)}`)),
        act('Time out 10 min', () => api('POST', `${base}/timeouts`, { handle: m.handle, seconds: 600 })),
        act(`Ban @${m.handle}`, async () => {
          if (!window.confirm(`Ban @${m.handle} from this room's chat? They can no longer post here until unbanned.`)) return;
          await api('POST', `${base}/bans`, { handle: m.handle });
        })));
    return details;
  }

  send() {
    const text = this.text.value.trim();
    if (!text) return;
    if (Date.now() < this.blockedUntil) return;
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
      this.showError('Not connected to the chat yet; your message was not sent. Try again in a moment.');
      return;
    }
    const nonce = `c${Date.now().toString(36)}-${++this.nonce}`;
    this.pending.set(nonce, text);
    this.ws.send(JSON.stringify({ type: 'message', text, nonce }));
    this.text.value = '';
    this.showError('');
    this.busy(true);
  }

  busy(on) {
    if (this.sendButton) this.sendButton.textContent = on ? 'Sending…' : 'Send';
  }

  restore(text) {
    if (this.text && !this.text.value) this.text.value = text;
  }

  error(f) {
    const text = f.nonce ? this.pending.get(f.nonce) : undefined;
    if (f.nonce) {
      this.pending.delete(f.nonce);
      this.busy(false);
      if (text) this.restore(text);
    }
    const wait = f.retry_after_ms || 0;
    switch (f.code) {
      case 'rate_limited':
        this.block(Date.now() + wait, 'You are sending messages too fast');
        break;
      case 'slow_mode':
        this.block(Date.now() + wait, 'Slow mode is on');
        break;
      case 'timed_out':
        this.block(Date.now() + wait, 'You are timed out');
        break;
      case 'banned':
        this.block(Infinity, 'You are banned from this chat');
        break;
      case 'too_long':
        this.showError('That message is too long. Shorten it and send again.');
        break;
      case 'invalid':
        this.showError(f.message ? `Not sent: ${f.message}.` : 'That message cannot be sent.');
        break;
      case 'unauthorized':
        this.showError('Log in to chat.');
        break;
      case 'unavailable':
        this.showError(f.nonce ? 'Chat is unavailable right now: your message was not sent. Try again shortly.' : 'Chat history is unavailable right now.');
        break;
      default:
        this.showError(f.message || 'Something went wrong with the chat.');
    }
  }

  // block stops sending until a time (Infinity: for good, 0: unblock), counting down.
  block(until, why) {
    this.blockedUntil = until;
    clearInterval(this.blockTimer);
    const update = () => {
      const left = this.blockedUntil - Date.now();
      if (left <= 0) {
        clearInterval(this.blockTimer);
        this.showError('');
        if (this.sendButton) this.sendButton.disabled = false;
        return;
      }
      if (this.sendButton) this.sendButton.disabled = true;
      this.showError(Number.isFinite(left) ? `${why}. You can send again in ${Math.ceil(left / 1000)} s.` : `${why}.`);
    };
    update();
    if (Number.isFinite(until) && until > Date.now()) this.blockTimer = setInterval(update, 500);
  }

  showError(text) {
    if (!this.errorEl) {
      if (text) this.notice(text);
      return;
    }
    this.errorEl.textContent = text;
    this.errorEl.hidden = !text;
  }
}
