// The chat of a past broadcast, replayed with its video: the log shows what was posted up
// to the playhead, follows it as it plays, re-renders on a seek and stands still on pause.
// Messages are loaded a minute-long window at a time around the playhead, the next one
// ahead of it, never the whole chat at once. Texts go in as text, never parsed as HTML.
import { $, h, clock } from './dom.js';
import { api } from './api.js';

const windowMS = 60000;
const pageSize = 500;
const maxPages = 10; // per window: a chat busier than 5000 messages a minute is cut
const maxShown = 200;
const retryMS = 5000;

export class ReplayChat {
  constructor(root, { id, video }) {
    this.root = root;
    this.id = id;
    this.video = video;
    this.log = $('[data-chat-log]', root);
    this.stateEl = $('[data-chat-state]', root);
    this.windows = new Map(); // window index -> its messages, null while loading
    this.shownTo = -1; // the log shows what was posted up to this ms; -1: render it anew
    this.retryAt = 0;
    for (const ev of ['timeupdate', 'seeked', 'loadedmetadata']) video.addEventListener(ev, () => this.update());
    video.addEventListener('seeking', () => { this.shownTo = -1; this.update(); });
    this.update();
  }

  now() { return Math.floor((this.video.currentTime || 0) * 1000); }

  setState(text) {
    this.stateEl.textContent = text;
    this.root.dataset.chatState = text ? text.split(' ')[0] : 'ready';
  }

  load(i) {
    if (i < 0 || this.windows.has(i) || Date.now() < this.retryAt) return;
    this.windows.set(i, null);
    this.fetchWindow(i).then((msgs) => {
      this.windows.set(i, msgs);
      if (i * windowMS <= this.now()) this.shownTo = -1; // it holds messages already due
      this.setState('');
      this.update();
    }, (e) => {
      this.windows.delete(i);
      this.retryAt = Date.now() + retryMS;
      this.setState(`unavailable · ${e.message}`);
    });
  }

  async fetchWindow(i) {
    const base = `/api/v1/broadcasts/${encodeURIComponent(this.id)}/chat?limit=${pageSize}&to=${(i + 1) * windowMS}`;
    let url = `${base}&from=${i * windowMS}`;
    const out = [];
    for (let p = 0; p < maxPages; p++) {
      const page = await api('GET', url);
      out.push(...(page.messages || []));
      if (!page.next) break;
      url = `${base}&cursor=${encodeURIComponent(page.next)}`;
    }
    return out;
  }

  update() {
    const t = this.now();
    const i = Math.floor(t / windowMS);
    for (const k of this.windows.keys()) if (k < i - 1 || k > i + 1) this.windows.delete(k);
    this.load(i);
    this.load(i - 1); // what was posted just before a seek's target
    if (t % windowMS > windowMS / 2) this.load(i + 1);
    this.render(t, i);
  }

  // due lists the loaded messages posted after from and up to to (ms), oldest first.
  due(from, to, i) {
    const out = [];
    for (const k of [i - 1, i]) {
      for (const m of this.windows.get(k) || []) if (m.offset_ms > from && m.offset_ms <= to) out.push(m);
    }
    return out;
  }

  render(t, i) {
    const stick = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 40;
    if (this.shownTo < 0 || t < this.shownTo) {
      this.log.replaceChildren(...this.due(-1, t, i).slice(-maxShown).map((m) => this.item(m)));
    } else if (t > this.shownTo) {
      this.log.append(...this.due(this.shownTo, t, i).map((m) => this.item(m)));
      while (this.log.children.length > maxShown) this.log.firstElementChild.remove();
    }
    this.shownTo = t;
    if (stick || !this.log.children.length) this.log.scrollTop = this.log.scrollHeight;
  }

  item(m) {
    return h('li', { class: 'msg', dataset: { id: m.id, offsetMs: String(m.offset_ms) } },
      h('span', { class: 'who', text: `@${m.handle}` }), ' ',
      h('span', { class: 'text', text: m.text }), ' ',
      h('time', { title: 'into the broadcast' }, clock(m.offset_ms / 1000)));
  }
}
