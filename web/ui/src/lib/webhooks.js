// A room's webhooks in its dashboard: add one (its signing secret is shown once), edit
// its URL, format and events, send it a test event, read its delivery log and send a
// failed delivery again, delete it.
import { h, date, confirmDialog, copyText } from './dom.js';
import { api } from './api.js';
import { section, showError } from './forms.js';

export function webhooksSection(room) {
  const base = `/api/v1/rooms/${encodeURIComponent(room.slug)}/webhooks`;
  const list = h('ul', { class: 'plain hooks', 'data-webhooks': '' }, h('li', { class: 'muted' }, 'Loading…'));
  const secretOut = h('div', { 'data-webhook-secret': '' });
  const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
  let events = [];
  // The webhooks whose delivery log is open: a reload of the list keeps them open.
  const openLogs = new Set();

  const eventBoxes = (name, checked) => h('fieldset', { class: 'scopes' }, h('legend', null, 'Events'),
    events.map((ev) => h('label', { class: 'check' }, h('input', { type: 'checkbox', name, value: ev, checked: checked.includes(ev) }), ' ', h('code', null, ev))));
  const formatSelect = (id, current) => h('select', { id, name: 'format' },
    h('option', { value: 'json', selected: current === 'json' }, 'JSON, signed'),
    h('option', { value: 'slack', selected: current === 'slack' }, 'Slack (one readable line)'));

  const render = (hooks) => {
    list.replaceChildren(...(hooks.length ? hooks.map(item) : [h('li', { class: 'muted' }, 'No webhooks yet.')]));
  };
  const load = async () => {
    try {
      const out = await api('GET', base);
      events = out.events;
      render(out.webhooks);
      if (!createForm.dataset.ready) {
        createForm.dataset.ready = '1';
        createForm.insertBefore(eventBoxes('events', events), createErr);
      }
    } catch (e) {
      list.replaceChildren(h('li', { class: 'error' }, `Webhooks cannot be listed: ${e.message}`));
    }
  };

  function item(hook) {
    // The log's heading and Refresh button stay while its table is fetched, so that a slow
    // or failed fetch leaves something to retry with.
    const logBody = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
    const log = h('div', { class: 'delivery-log', 'data-delivery-log': hook.id, hidden: !openLogs.has(hook.id) },
      h('div', { class: 'row' }, h('h3', { class: 'grow' }, 'Delivery log'),
        h('button', { type: 'button', class: 'small', onclick: () => showLog() }, 'Refresh')),
      logBody);
    const editor = h('div', { hidden: true });
    const li = h('li', { class: 'hook', dataset: { webhookId: hook.id } },
      h('div', { class: 'row' },
        h('span', { class: 'grow' }, h('strong', { 'data-webhook-url': '' }, hook.url), ' ',
          h('span', { class: 'muted' }, `${hook.format} · ${hook.events.join(', ')}`)),
        h('button', { type: 'button', class: 'small', 'data-test-webhook': '', onclick: () => test() }, 'Send test'),
        h('button', { type: 'button', class: 'small', 'data-show-deliveries': '', onclick: () => toggleLog() }, 'Deliveries'),
        h('button', { type: 'button', class: 'small', 'data-edit-webhook': '', onclick: () => { editor.hidden = !editor.hidden; } }, 'Edit'),
        h('button', { type: 'button', class: 'small danger', 'data-delete-webhook': '', onclick: () => remove() }, 'Delete')),
      editor, log);
    editor.append(editForm(hook));

    async function test() {
      try {
        await api('POST', `${base}/${encodeURIComponent(hook.id)}/test`);
        log.hidden = false;
        openLogs.add(hook.id);
        showLog();
        setTimeout(showLog, 1500);
      } catch (e) { showError(err, e); }
    }
    function toggleLog() {
      log.hidden = !log.hidden;
      if (log.hidden) openLogs.delete(hook.id);
      else {
        openLogs.add(hook.id);
        showLog();
      }
    }
    async function showLog() {
      try {
        const page = await api('GET', `${base}/${encodeURIComponent(hook.id)}/deliveries?limit=20`);
        logBody.replaceChildren(page.deliveries.length ? h('table', { class: 'log' },
            h('thead', null, h('tr', null, ['Event', 'Status', 'Attempts', 'Answer', 'Queued', ''].map((t) => h('th', null, t)))),
            h('tbody', null, page.deliveries.map((d) => deliveryRow(d, () => api('POST',
              `${base}/${encodeURIComponent(hook.id)}/deliveries/${encodeURIComponent(d.id)}/redeliver`), showLog, err))))
            : h('p', { class: 'muted' }, 'Nothing delivered yet.'));
      } catch (e) { logBody.replaceChildren(h('p', { class: 'form-error', role: 'alert' }, `The delivery log cannot be read: ${e.message}`)); }
    }
    async function remove() {
      const ok = await confirmDialog('Delete this webhook?', `${hook.url} receives nothing more; pending deliveries are canceled.`, 'Delete');
      if (!ok) return;
      try {
        await api('DELETE', `${base}/${encodeURIComponent(hook.id)}`);
        load();
      } catch (e) { showError(err, e); }
    }
    if (!log.hidden) showLog();
    return li;
  }

  function editForm(hook) {
    const ferr = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const id = `hook-url-${hook.id}`;
    const form = h('form', { class: 'stack', novalidate: true, 'data-webhook-edit': '' },
      h('label', { for: id }, 'URL'),
      h('input', { id, name: 'url', type: 'url', required: true, value: hook.url }),
      h('label', { for: `${id}-f` }, 'Format'), formatSelect(`${id}-f`, hook.format),
      eventBoxes('events', hook.events), ferr,
      h('button', { type: 'submit', class: 'primary' }, 'Save webhook'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = new FormData(form);
      try {
        await api('PATCH', `${base}/${encodeURIComponent(hook.id)}`, { url: String(f.get('url')).trim(), format: f.get('format'), events: f.getAll('events').map(String) });
        load();
      } catch (ex) { showError(ferr, ex, form); }
    });
    return form;
  }

  const createErr = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const createForm = h('form', { class: 'stack', novalidate: true, 'data-create-webhook': '' },
    h('label', { for: 'hook-url' }, 'URL ', h('span', { class: 'muted' }, '(https://… where events are posted)')),
    h('input', { id: 'hook-url', name: 'url', type: 'url', required: true, placeholder: 'https://example.com/onair' }),
    h('label', { for: 'hook-format' }, 'Format'), formatSelect('hook-format', 'json'),
    createErr,
    h('button', { type: 'submit' }, 'Add webhook'));
  createForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(createForm);
    try {
      const out = await api('POST', base, { url: String(f.get('url')).trim(), format: f.get('format'), events: f.getAll('events').map(String) });
      const input = h('input', { id: 'webhook-secret', readonly: true, value: out.secret, autocomplete: 'off', spellcheck: 'false' });
      const copy = h('button', { type: 'button' }, 'Copy');
      copy.addEventListener('click', () => copyText(out.secret, copy));
      secretOut.replaceChildren(h('label', { for: 'webhook-secret' }, 'Signing secret'), h('div', { class: 'row' }, input, copy),
        h('p', { class: 'notice' }, 'Shown only now. Check each delivery’s Onair-Signature with it.'));
      createForm.reset();
      createErr.hidden = true;
      load();
    } catch (ex) { showError(createErr, ex, createForm); }
  });
  load();
  const card = section('Webhooks', 'hooks-h',
    h('p', { class: 'muted' }, 'onair posts this room’s events (live, ended, recordings, moderation, clips) to these URLs, signed, retried for an hour.'),
    list, err, secretOut, createForm);
  card.classList.add('wide'); // the delivery log is a table: the whole width
  return card;
}

// deliveryRow is one delivery in a log, with a button to send it again once it is done.
export function deliveryRow(d, redeliver, reload, err) {
  const again = d.status === 'failed' || d.status === 'delivered'
    ? h('button', {
      type: 'button', class: 'small', 'data-redeliver': d.id,
      onclick: async () => {
        try {
          await redeliver();
          reload();
          setTimeout(reload, 1500);
        } catch (e) { showError(err, e); }
      },
    }, 'Redeliver') : null;
  return h('tr', { dataset: { deliveryId: d.id, status: d.status, type: d.type } },
    h('td', null, h('code', null, d.type), d.redelivery_of ? h('span', { class: 'muted' }, ' (again)') : null),
    h('td', { class: `st-${d.status}` }, d.status),
    h('td', null, String(d.attempts)),
    h('td', null, d.last_status ? String(d.last_status) : (d.last_error || '—')),
    h('td', null, date(d.queued)),
    h('td', null, again));
}
