// Account settings: change the password, sign out everywhere, personal API tokens (made
// here, shown once, revoked here), and deleting the account after a confirmation.
//
// A token's secret is kept in this page's memory only while the page shows it: nothing is
// written to localStorage or sessionStorage.
import { h, flash, date, confirmDialog, copyText } from './dom.js';
import { api } from './api.js';
import { showError, section } from './forms.js';

export function settings(main) {
  const handle = document.body.dataset.userHandle;
  main.replaceChildren(
    h('h1', null, 'Settings'),
    h('p', { class: 'muted' }, `Signed in as @${handle}.`),
    h('div', { class: 'dash-grid' }, passwordSection(), tokensSection(), sessionsSection(), deleteSection(handle)));
}

function passwordSection() {
  const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const ok = h('p', { class: 'ok', role: 'status' });
  const form = h('form', { class: 'stack', novalidate: true, 'data-password-form': '' },
    h('label', { for: 'pw-current' }, 'Current password ', h('span', { class: 'muted' }, '(empty if you sign in through a provider and have none)')),
    h('input', { id: 'pw-current', name: 'current_password', type: 'password', autocomplete: 'current-password' }),
    h('label', { for: 'pw-new' }, 'New password ', h('span', { class: 'muted' }, '(10 to 200 characters)')),
    h('input', { id: 'pw-new', name: 'new_password', type: 'password', autocomplete: 'new-password', required: true, minlength: 10, maxlength: 200 }),
    err, ok,
    h('button', { type: 'submit', class: 'primary' }, 'Change password'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    ok.textContent = '';
    err.hidden = true;
    try {
      await api('POST', '/api/v1/auth/password', { current_password: String(f.get('current_password')), new_password: String(f.get('new_password')) });
      form.reset();
      ok.textContent = 'Password changed. Your other sessions are signed out.';
    } catch (ex) {
      showError(err, ex, form);
    }
  });
  return section('Password', 'pw-h', form);
}

function sessionsSection() {
  const b = h('button', { type: 'button', 'data-sign-out-everywhere': '' }, 'Sign out everywhere');
  b.addEventListener('click', async () => {
    const ok = await confirmDialog('Sign out everywhere?', 'Every browser signed in to your account is signed out, this one too. API tokens keep working: revoke them below.', 'Sign out everywhere');
    if (!ok) return;
    try {
      await api('DELETE', '/api/v1/auth/sessions');
      location.assign('/login');
    } catch (e) {
      flash(`Not signed out: ${e.message}`);
    }
  });
  return section('Sessions', 'sessions-h', h('p', { class: 'muted' }, 'Lost a device, or used a shared computer? End every session of your account at once.'), b);
}

function tokensSection() {
  const list = h('ul', { class: 'plain', 'data-tokens': '' }, h('li', { class: 'muted' }, 'Loading…'));
  const shown = h('div', { 'data-new-token': '' });
  const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const scopesBox = h('fieldset', { class: 'scopes' }, h('legend', null, 'Scopes'));
  const form = h('form', { class: 'stack', novalidate: true, 'data-token-form': '' },
    h('label', { for: 'tok-name' }, 'Name ', h('span', { class: 'muted' }, '(what the token is for)')),
    h('input', { id: 'tok-name', name: 'name', required: true, maxlength: 64, placeholder: 'deploy script' }),
    scopesBox,
    h('label', { for: 'tok-days' }, 'Expires after'),
    h('select', { id: 'tok-days', name: 'expires_in_days' },
      h('option', { value: '7' }, '7 days'), h('option', { value: '30', selected: true }, '30 days'),
      h('option', { value: '90' }, '90 days'), h('option', { value: '366' }, 'a year')),
    err,
    h('button', { type: 'submit', class: 'primary' }, 'Make a token'));

  const render = (out) => {
    if (!scopesBox.dataset.filled) {
      scopesBox.dataset.filled = '1';
      for (const sc of out.scopes) {
        scopesBox.append(h('label', { class: 'check' },
          h('input', { type: 'checkbox', name: 'scopes', value: sc.scope, checked: sc.scope === 'rooms:read' }),
          ' ', h('code', null, sc.scope), ' ', h('span', { class: 'muted' }, sc.description)));
      }
    }
    list.replaceChildren(...(out.tokens.length ? out.tokens.map((t) => h('li', { class: 'row', dataset: { tokenId: t.id } },
      h('span', null, h('strong', null, t.name), ' ', h('span', { class: 'muted' }, `${t.scopes.join(', ')} · expires ${date(t.expires)}`)),
      h('button', {
        type: 'button', class: 'small danger', 'data-revoke-token': t.name, 'aria-label': `Revoke the token ${t.name}`,
        onclick: async () => {
          const ok = await confirmDialog(`Revoke “${t.name}”?`, 'Scripts using it stop working at once.', 'Revoke');
          if (!ok) return;
          try {
            await api('DELETE', `/api/v1/tokens/${encodeURIComponent(t.id)}`);
            load();
          } catch (e) { showError(err, e); }
        },
      }, 'Revoke'))) : [h('li', { class: 'muted' }, 'No tokens yet.')]));
  };
  const load = async () => {
    try {
      render(await api('GET', '/api/v1/tokens'));
    } catch (e) {
      list.replaceChildren(h('li', { class: 'error' }, `Tokens cannot be listed: ${e.message}`));
    }
  };
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    err.hidden = true;
    try {
      const out = await api('POST', '/api/v1/tokens', {
        name: String(f.get('name')).trim(), scopes: f.getAll('scopes').map(String), expires_in_days: Number(f.get('expires_in_days')),
      });
      const input = h('input', { id: 'token-secret', readonly: true, value: out.secret, 'data-token-secret': '', autocomplete: 'off', spellcheck: 'false' });
      const copy = h('button', { type: 'button' }, 'Copy');
      copy.addEventListener('click', () => copyText(out.secret, copy));
      const done = h('button', { type: 'button', class: 'small' }, 'I saved it');
      done.addEventListener('click', () => shown.replaceChildren());
      shown.replaceChildren(
        h('label', { for: 'token-secret' }, `Token “${out.token.name}”`),
        h('div', { class: 'row' }, input, copy),
        h('p', { class: 'notice' }, 'This token is shown only now: onair keeps only a hash of it. Send it as “Authorization: Bearer …”.'),
        done);
      form.elements.namedItem('name').value = '';
      load();
    } catch (ex) {
      showError(err, ex, form);
    }
  });
  load();
  return section('API tokens', 'tokens-h',
    h('p', { class: 'muted' }, 'For scripts and bots: a token acts as you, within its scopes, until it expires or you revoke it. The API is described at ',
      h('a', { href: '/api/v1/openapi.json' }, '/api/v1/openapi.json'), '.'),
    list, shown, form);
}

function deleteSection(handle) {
  const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const form = h('form', { class: 'stack', novalidate: true, 'data-delete-account': '' },
    h('p', null, 'Your rooms go with your account, with their past broadcasts, recordings, clips and webhooks. What is live is stopped first. This cannot be undone.'),
    h('label', { for: 'del-handle' }, `Type your handle, ${handle}, to confirm`),
    h('input', { id: 'del-handle', name: 'handle', required: true, autocomplete: 'off', autocapitalize: 'off', spellcheck: 'false' }),
    h('label', { for: 'del-pw' }, 'Password ', h('span', { class: 'muted' }, '(if your account has one)')),
    h('input', { id: 'del-pw', name: 'password', type: 'password', autocomplete: 'current-password' }),
    err,
    h('button', { type: 'submit', class: 'danger' }, 'Delete my account'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const ok = await confirmDialog('Delete your account for good?', 'Your account, rooms, broadcasts and recordings are deleted now.', 'Delete my account');
    if (!ok) return;
    try {
      await api('POST', '/api/v1/auth/account/delete', { handle: String(f.get('handle')).trim(), password: String(f.get('password')) });
      location.assign('/');
    } catch (ex) {
      showError(err, ex, form);
    }
  });
  return section('Delete your account', 'delete-h', form);
}

