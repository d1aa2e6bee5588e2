// Log in and sign up. The API sets the session cookie (httpOnly); the page only navigates.
import { $, $$ } from './dom.js';
import { api } from './api.js';

export function authForm(form) {
  const kind = form.dataset.auth;
  const errorEl = $('[data-form-error]', form);
  const button = $('button[type=submit]', form);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    for (const input of $$('input', form)) input.removeAttribute('aria-invalid');
    const data = Object.fromEntries(new FormData(form));
    const missing = $$('input[required]', form).find((i) => !i.value.trim());
    if (missing) {
      fail(`Fill in “${labelOf(missing)}”.`, missing);
      return;
    }
    button.disabled = true;
    try {
      await api('POST', `/api/v1/auth/${kind}`, data);
      location.assign(form.dataset.next || '/dashboard');
    } catch (err) {
      button.disabled = false;
      const input = err.field && form.elements.namedItem(err.field);
      let text = err.message;
      if (err.field && input) text = `${labelOf(input)}: ${err.detail}`;
      if (err.status === 401 && kind === 'login') text = 'Wrong email, handle or password.';
      if (err.status === 429) text = `Too many attempts. Try again in ${err.retryAfter || 60} s.`;
      fail(text, input instanceof HTMLInputElement ? input : null);
    }
  });

  function fail(text, input) {
    errorEl.textContent = text;
    errorEl.hidden = false;
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      input.setAttribute('aria-describedby', 'form-error');
      input.focus();
    }
  }
  errorEl.id = 'form-error';
}

function labelOf(input) {
  const label = input.id && document.querySelector(`label[for="${input.id}"]`);
  return label ? label.firstChild.textContent.trim() : input.name;
}
