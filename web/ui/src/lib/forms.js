// What the dashboard, settings and admin console share: a card section, and an API error
// shown next to the form field it names.

export function section(title, id, ...children) {
  const el = document.createElement('section');
  el.className = 'card';
  el.setAttribute('aria-labelledby', id);
  const h2 = document.createElement('h2');
  h2.id = id;
  h2.textContent = title;
  el.append(h2, ...children.filter((c) => c != null && c !== false));
  return el;
}

// showError shows err in el; when err names a field of form, next to that field's label.
export function showError(el, err, form) {
  let text = err.message;
  const input = form && err.field && form.querySelector(`[name="${CSS.escape(err.field)}"]`);
  if (input) {
    const label = input.id && form.querySelector(`label[for="${input.id}"]`);
    text = `${label ? label.firstChild.textContent.trim() : err.field}: ${err.detail}`;
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  }
  el.textContent = text;
  el.hidden = false;
}
