// Live previews on the home page: the card of a live public room plays its stream, muted,
// while the pointer is over it or it has the keyboard's focus, in the browser's own
// player (hls.js): the server decodes nothing. One plays at a time, and its player is
// destroyed as soon as the pointer or the focus leaves. Nothing plays for those who ask
// for less motion, nor on touch screens, which have no hover to end a preview.
import Hls from './hls.js';
import { $$, h } from './dom.js';

export function livePreviews(list) {
  if (!list || !Hls.isSupported()) return;
  const calm = matchMedia('(prefers-reduced-motion: reduce)');
  const hover = matchMedia('(hover: hover)');
  let current = null; // { card, hls, video }

  const stop = () => {
    if (!current) return;
    current.hls.destroy();
    current.video.remove();
    delete current.card.dataset.previewing;
    current = null;
  };
  const start = (card) => {
    if (current?.card === card || calm.matches || !hover.matches) return;
    stop();
    const video = h('video', { class: 'preview', playsinline: true, 'aria-hidden': 'true' });
    video.muted = true; // the property: autoplay needs it, the attribute alone is not enough
    const hls = new Hls({ enableWorker: false, lowLatencyMode: true, maxBufferLength: 4, backBufferLength: 0 });
    hls.on(Hls.Events.MANIFEST_PARSED, () => video.play().catch(() => {}));
    hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal && current?.hls === hls) stop(); });
    hls.loadSource(card.dataset.preview);
    hls.attachMedia(video);
    card.prepend(video);
    card.dataset.previewing = 'true';
    current = { card, hls, video };
  };
  const leave = (card) => { if (current?.card === card) stop(); };

  for (const card of $$('[data-preview]', list)) {
    card.addEventListener('pointerenter', (e) => { if (e.pointerType === 'mouse') start(card); });
    card.addEventListener('pointerleave', () => leave(card));
    card.addEventListener('focusin', () => start(card));
    card.addEventListener('focusout', (e) => { if (!card.contains(e.relatedTarget)) leave(card); });
  }
  // A page left for the back-forward cache keeps nothing playing.
  addEventListener('pagehide', stop);
}
