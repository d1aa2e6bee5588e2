// What the scripts that drive the watch page's player (quality.mjs, quality-join.mjs)
// read of it.

export const wait = (page, fn, arg, timeout = 30000) => page.waitForFunction(fn, arg, { timeout, polling: 200 });

// playerState is the player's data attributes, its video's state, the quality menu, and
// the video's event counts where the script installed window.videoEvents.
export const playerState = (page) => page.evaluate(() => {
  const p = document.querySelector('[data-player]');
  const v = p.querySelector('video');
  const menu = p.querySelector('select[data-quality]');
  return {
    ...p.dataset, height: v.videoHeight, t: v.currentTime, paused: v.paused,
    menu: [...menu.options].map((o) => o.textContent), menuHidden: menu.hidden,
    events: window.videoEvents,
  };
});
