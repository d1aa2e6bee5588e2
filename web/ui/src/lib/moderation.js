// The moderators' panel on a room's page: slow mode, time a user out for a chosen length,
// ban (and delete their recent messages), unban, purge, and the moderation log. What a
// moderator may do to whom is chat's rule (chat/doc.go, "Limits and moderation"): a
// refusal comes back with the rule that refused it, shown as is.
import { h, date, since } from './dom.js';
import { api } from './api.js';
import { showError } from './forms.js';

const lengths = [[60, '1 minute'], [600, '10 minutes'], [3600, '1 hour'], [86400, '1 day'], [604800, '7 days']];
const slowModes = [[0, 'Off'], [5, '5 s'], [10, '10 s'], [30, '30 s'], [60, '1 minute'], [300, '5 minutes']];

export function moderationPanel(root, ref) {
  const base = `/api/v1/rooms/${encodeURIComponent(ref)}/chat`;
  const err = h('p', { class: 'form-error', role: 'alert', hidden: true, 'data-mod-error': '' });
  const ok = h('p', { class: 'ok', role: 'status', 'data-mod-ok': '' });
  const bans = h('ul', { class: 'plain', 'data-bans': '' });
  const log = h('ol', { class: 'plain modlog', 'data-mod-log': '' });
  const select = (id, name, options, selected) => h('select', { id, name },
    options.map(([v, label]) => h('option', { value: String(v), selected: v === selected }, label)));
  const done = (text) => {
    err.hidden = true;
    ok.textContent = text;
    refresh();
  };
  const act = (form, run) => form.addEventListener('submit', async (e) => {
    e.preventDefault();
    ok.textContent = '';
    const f = new FormData(form);
    try {
      await run(f);
    } catch (ex) {
      showError(err, ex, form);
    }
  });
  const handleOf = (f) => String(f.get('handle') || '').trim().replace(/^@/, '');

  const slow = h('form', { class: 'row', 'data-slow-mode': '' },
    h('label', { for: 'mod-slow' }, 'Slow mode'), select('mod-slow', 'seconds', slowModes, 0), h('button', { type: 'submit' }, 'Set'));
  act(slow, async (f) => {
    const seconds = Number(f.get('seconds'));
    await api('PUT', `${base}/slow-mode`, { seconds });
    done(seconds ? `Slow mode: one message every ${since(seconds * 1000)}.` : 'Slow mode is off.');
  });

  const user = h('form', { class: 'stack', 'data-mod-user': '' },
    h('label', { for: 'mod-handle' }, 'User'),
    h('input', { id: 'mod-handle', name: 'handle', required: true, placeholder: 'handle', autocapitalize: 'off', spellcheck: 'false' }),
    h('label', { for: 'mod-reason' }, 'Reason ', h('span', { class: 'muted' }, '(optional, shown in the chat)')),
    h('input', { id: 'mod-reason', name: 'reason', maxlength: 200 }),
    h('div', { class: 'row' },
      h('label', { for: 'mod-length' }, 'Time out for'), select('mod-length', 'seconds', lengths, 600),
      h('button', { type: 'submit', value: 'timeout', 'data-timeout': '' }, 'Time out')),
    h('div', { class: 'row' },
      h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'purge', checked: true }), ' and delete their messages of the last hour'),
      h('button', { type: 'submit', value: 'ban', class: 'danger', 'data-ban': '' }, 'Ban')),
    h('div', { class: 'row' },
      h('button', { type: 'submit', value: 'purge', 'data-purge': '' }, 'Delete their messages of the last hour')));
  user.addEventListener('submit', (e) => { user.dataset.action = e.submitter ? e.submitter.value : 'timeout'; }, true);
  act(user, async (f) => {
    const handle = handleOf(f);
    const reason = String(f.get('reason') || '');
    switch (user.dataset.action) {
      case 'ban': {
        await api('POST', `${base}/bans`, { handle, reason });
        let purged = 0;
        if (f.get('purge')) purged = (await api('POST', `${base}/purges`, { handle, minutes: 60 })).deleted;
        done(`@${handle} is banned${purged ? `; ${purged} message(s) deleted` : ''}.`);
        break;
      }
      case 'purge': {
        const out = await api('POST', `${base}/purges`, { handle, minutes: 60 });
        done(`${out.deleted} message(s) of @${handle} deleted.`);
        break;
      }
      default: {
        const seconds = Number(f.get('seconds'));
        await api('POST', `${base}/timeouts`, { handle, seconds, reason });
        done(`@${handle} is timed out for ${since(seconds * 1000)}.`);
      }
    }
  });

  async function refresh() {
    try {
      const [b, l] = await Promise.all([api('GET', `${base}/bans`), api('GET', `${base}/moderation?limit=20`)]);
      bans.replaceChildren(...(b.bans.length ? b.bans.map((ban) => h('li', { class: 'row', dataset: { bannedHandle: ban.handle } },
        h('span', { class: 'grow' }, `@${ban.handle} `, h('span', { class: 'muted' },
          ban.banned ? `banned${ban.reason ? ` (${ban.reason})` : ''}` : `timed out until ${date(ban.until)}`)),
        h('button', {
          type: 'button', class: 'small', 'data-unban': ban.handle,
          onclick: async () => {
            try {
              await api('DELETE', `${base}/bans/${encodeURIComponent(ban.handle)}`);
              done(`@${ban.handle} may chat again.`);
            } catch (e) { showError(err, e); }
          },
        }, ban.banned ? 'Unban' : 'Lift'))) : [h('li', { class: 'muted' }, 'Nobody is banned or timed out.')]));
      log.replaceChildren(...(l.actions.length ? l.actions.map((a) => h('li', { dataset: { action: a.action } },
        h('span', { class: 'muted' }, date(a.at)), ' ', describe(a))) : [h('li', { class: 'muted' }, 'No moderation yet.')]));
    } catch (e) {
      showError(err, e);
    }
  }
  refresh();
  root.hidden = false;
  root.replaceChildren(h('h2', { id: 'mod-h' }, 'Moderation'), slow, user, err, ok,
    h('h3', null, 'Banned and timed out'), bans, h('h3', null, 'Moderation log'), log);
}

function describe(a) {
  const who = `@${a.actor_handle || a.actor_id}`;
  const target = `@${a.target_handle || a.target_id}`;
  const ms = a.duration_ms || 0;
  switch (a.action) {
    case 'delete': return `${who} deleted a message${a.target_handle ? ` of ${target}` : ''}`;
    case 'timeout': return `${who} timed out ${target} for ${since(ms)}${a.reason ? ` (${a.reason})` : ''}`;
    case 'ban': return `${who} banned ${target}${a.reason ? ` (${a.reason})` : ''}`;
    case 'unban': return `${who} lifted the ban of ${target}`;
    case 'slow_mode': return ms ? `${who} set slow mode to ${since(ms)}` : `${who} turned slow mode off`;
    case 'purge': return `${who} deleted ${a.count} message(s) of ${target}`;
    default: return `${who}: ${a.action}`;
  }
}
