// Clips: the form that cuts one (on a room's page while live, on a replay), the list of a
// room's clips, and a clip's delete button.
import { $, h, date, clock, flash, confirmDialog } from './dom.js';
import { api } from './api.js';

// clipForm wires root's [data-clip-form]: path is where to POST, body() what to add to
// {seconds}. A made clip opens its page.
export function clipForm(root, path, body = () => ({})) {
  const form = $('[data-clip-form]', root);
  if (!form) return;
  const note = $('[data-clip-note]', form);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const btn = $('button', form);
    btn.disabled = true;
    note.textContent = 'Clipping…';
    try {
      const seconds = Number(form.elements.seconds.value);
      const c = await api('POST', path, { seconds, ...body() });
      location.assign(c.page_url);
    } catch (e) {
      note.textContent = e.message;
      btn.disabled = false;
    }
  });
}

// clipList fills root's [data-clips] with the room's clips.
export async function clipList(root, ref) {
  const list = $('[data-clips]', root);
  if (!list) return;
  try {
    const page = await api('GET', `/api/v1/rooms/${encodeURIComponent(ref)}/clips?limit=20`);
    if (!page.clips.length) {
      list.replaceChildren(h('li', { class: 'muted' }, 'No clips yet.'));
      return;
    }
    list.replaceChildren(...page.clips.map((c) => {
      const li = h('li', { class: 'broadcast', dataset: { clip: c.id } },
        h('span', null, h('a', { href: c.page_url }, c.title || 'Clip'), ' ',
          h('span', { class: 'muted' }, `by @${c.maker.handle} · ${date(c.created)} · ${clock(c.duration_ms / 1000)}`)));
      if (c.can_delete) {
        li.append(h('button', { type: 'button', class: 'danger', onclick: async () => {
          if (!(await deleteClip(c.id))) return;
          li.remove();
        } }, 'Delete'));
      }
      return li;
    }));
  } catch (e) {
    list.replaceChildren(h('li', { class: 'error' }, `Clips cannot be listed: ${e.message}`));
  }
}

// deleteClip asks, then deletes; it says whether the clip is gone.
export async function deleteClip(id) {
  if (!(await confirmDialog('Delete this clip?', 'It is removed for everyone.', 'Delete'))) return false;
  try {
    await api('DELETE', `/api/v1/clips/${encodeURIComponent(id)}`);
    return true;
  } catch (e) {
    flash(`The clip was not deleted: ${e.message}`);
    return false;
  }
}
