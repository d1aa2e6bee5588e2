// Uploading a recorded video as a past broadcast of a room. The file goes straight to the
// object store in parts, through URLs onair presigns, a few parts at a time, each retried;
// onair then checks it (a real MP4 or MOV with H.264, HEVC or AV1 and AAC or Opus) and
// turns it into a replay. An upload interrupted by a reload or a lost connection resumes:
// its id is remembered in localStorage under the file's name, size and modification time
// (nothing else: no URL, no secret), and onair says which parts the store already holds.
import { h, bytes } from './dom.js';
import { api } from './api.js';
import { section, showError } from './forms.js';

const parallel = 3;
const attempts = 5;

export function uploadSection(room, onReady) {
  const base = `/api/v1/rooms/${encodeURIComponent(room.slug)}/uploads`;
  const fileInput = h('input', { id: 'upload-file', name: 'file', type: 'file', required: true, accept: '.mp4,.mov,.m4v,video/mp4,video/quicktime' });
  const title = h('input', { id: 'upload-title', name: 'title', maxlength: 100, placeholder: 'The file name' });
  const bar = h('progress', { max: 1, value: 0, 'aria-label': 'Upload progress', 'data-upload-progress': '', hidden: true });
  const status = h('p', { class: 'muted', role: 'status', 'data-upload-status': '' });
  const resumed = h('p', { class: 'muted', 'data-upload-resumed': '', hidden: true });
  const err = h('p', { class: 'form-error', role: 'alert', hidden: true, 'data-upload-error': '' });
  const done = h('p', { class: 'ok', 'data-upload-done': '' });
  const button = h('button', { type: 'submit', class: 'primary' }, 'Upload');
  const form = h('form', { class: 'stack', novalidate: true, 'data-upload-form': '' },
    h('label', { for: 'upload-file' }, 'Video file ', h('span', { class: 'muted' }, '(MP4 or MOV: H.264, HEVC or AV1 video with AAC or Opus audio)')),
    fileInput,
    h('label', { for: 'upload-title' }, 'Title ', h('span', { class: 'muted' }, '(optional)')),
    title, button, bar, status, resumed, err, done);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const file = fileInput.files[0];
    if (!file) return;
    err.hidden = true;
    resumed.hidden = true;
    done.replaceChildren();
    button.disabled = true;
    try {
      await upload(file);
    } catch (ex) {
      showError(err, ex, form);
      status.textContent = '';
    } finally {
      button.disabled = false;
    }
  });

  const remember = (file) => `onair-upload:${room.slug}:${file.name}:${file.size}:${file.lastModified}`;

  async function upload(file) {
    const key = remember(file);
    let view = null;
    const saved = localStorage.getItem(key);
    if (saved) {
      try {
        view = await api('GET', `${base}/${encodeURIComponent(saved)}`);
      } catch { /* gone: start again */ }
      if (view && !['uploading', 'processing', 'ready'].includes(view.state)) view = null;
      if (view?.state === 'uploading') {
        resumed.textContent = `Resumed: ${(view.uploaded || []).length} of ${view.part_count} parts were uploaded already.`;
        resumed.hidden = false;
      }
    }
    if (!view) {
      view = await api('POST', base, { filename: file.name, size: file.size, content_type: file.type, title: title.value.trim() });
      localStorage.setItem(key, view.id);
      resumed.hidden = true;
    }
    if (view.state === 'uploading') {
      await sendParts(file, view);
      view = await api('POST', `${base}/${encodeURIComponent(view.id)}/complete`);
    }
    bar.hidden = true;
    while (view.state === 'processing') {
      status.textContent = 'Uploaded. Checking and preparing the video…';
      await sleep(1500);
      view = await api('GET', `${base}/${encodeURIComponent(view.id)}`);
    }
    localStorage.removeItem(key);
    if (view.state === 'ready') {
      status.textContent = '';
      done.replaceChildren('Ready: ', h('a', { href: `/replay/${view.broadcast_id}`, 'data-upload-link': '' }, `watch “${view.title}”`),
        ' among the room’s past broadcasts.');
      form.reset();
      onReady?.();
      return;
    }
    const e = new Error(view.state === 'refused' ? `This file was refused: ${view.reason}` : `The upload ${view.state}: ${view.reason || 'try again'}`);
    err.dataset.refused = view.state === 'refused' ? '1' : '';
    throw e;
  }

  // sendParts PUTs the parts the store lacks, a few at a time, with the bar showing bytes
  // stored over the file's size.
  async function sendParts(file, view) {
    const sizeOf = (n) => (n < view.part_count ? view.part_size : view.size - (n - 1) * view.part_size);
    let stored = (view.uploaded || []).reduce((sum, n) => sum + sizeOf(n), 0);
    const inFlight = new Map();
    const show = () => {
      let sent = stored;
      for (const v of inFlight.values()) sent += v;
      bar.hidden = false;
      bar.max = view.size;
      bar.value = sent;
      bar.dataset.sent = String(sent);
      status.textContent = `Uploading: ${bytes(sent)} of ${bytes(view.size)}`;
    };
    show();
    let urls = new Map(view.parts.map((p) => [p.number, p]));
    const queue = [...urls.keys()];
    const refresh = async () => {
      const fresh = await api('GET', `/api/v1/rooms/${encodeURIComponent(room.slug)}/uploads/${encodeURIComponent(view.id)}`);
      urls = new Map((fresh.parts || []).map((p) => [p.number, p]));
    };
    const worker = async () => {
      while (queue.length) {
        const n = queue.shift();
        for (let i = 1; ; i++) {
          const p = urls.get(n);
          if (!p) break; // the store has it already
          const start = (n - 1) * view.part_size;
          try {
            await put(p.url, file.slice(start, start + p.size), (loaded) => { inFlight.set(n, loaded); show(); });
            inFlight.delete(n);
            stored += p.size;
            show();
            break;
          } catch (ex) {
            inFlight.delete(n);
            if (i >= attempts) throw new Error(`Part ${n} could not be uploaded (${ex.message}). Choose the file again to resume.`);
            await sleep(500 * 2 ** i);
            try { await refresh(); } catch { /* retry with the URLs we have */ }
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallel, queue.length) }, worker));
  }

  return section('Upload a video', 'upload-h',
    h('p', { class: 'muted' }, 'A recorded talk or stream becomes a past broadcast of this room: listed, replayed and clipped like one that was live.'),
    form);
}

// put sends body with progress, resolving when the store answers 2xx.
function put(url, body, progress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', url);
    xhr.upload.onprogress = (e) => progress(e.loaded);
    xhr.onload = () => (xhr.status >= 200 && xhr.status < 300 ? resolve() : reject(new Error(`HTTP ${xhr.status}`)));
    xhr.onerror = () => reject(new Error('network error'));
    xhr.onabort = () => reject(new Error('aborted'));
    xhr.send(body);
  });
}

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }
