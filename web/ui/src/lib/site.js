// What every page does: the log-out button and the "live for" times that tick.
import { $$, flash, since } from './dom.js';
import { api } from './api.js';

export function initSite() {
  for (const b of $$('[data-logout]')) {
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        await api('POST', '/api/v1/auth/logout');
        location.assign('/');
      } catch (e) {
        b.disabled = false;
        flash(`Could not log out: ${e.message}`);
      }
    });
  }
  tickSince();
  setInterval(tickSince, 15000);
}

function tickSince() {
  for (const t of $$('time[data-since]')) {
    const at = Date.parse(t.getAttribute('datetime'));
    if (!Number.isNaN(at)) t.textContent = since(Date.now() - at);
  }
}
