// The share button of the pages with video: it copies a link to the clipboard and shows it
// in a read-only field too, for browsers (or pages) where the clipboard is refused.
import { $ } from './dom.js';

// shareButton wires root's [data-share] button: link() gives the URL to share.
export function shareButton(root, link) {
  const btn = $('[data-share]', root);
  const field = $('[data-share-url]', root);
  const note = $('[data-share-note]', root);
  if (!btn || !field) return;
  btn.addEventListener('click', async () => {
    const url = link();
    field.value = url;
    field.hidden = false;
    field.select();
    try {
      await navigator.clipboard.writeText(url);
      note.textContent = 'Link copied';
    } catch {
      note.textContent = 'Copy the link';
    }
  });
}

// timeParam reads ?t= (seconds, or h/m/s like 1h2m3s) from the page's URL: where a shared
// replay link starts. 0 when absent or unreadable.
export function timeParam(search = location.search) {
  const t = new URLSearchParams(search).get('t');
  if (!t) return 0;
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t);
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(t);
  if (!m || !t) return 0;
  return (Number(m[1] || 0) * 3600) + (Number(m[2] || 0) * 60) + Number(m[3] || 0);
}
