// The JSON API client. The session lives in an httpOnly cookie the page cannot read; the
// CSRF token that unsafe requests must carry is fetched from /api/v1/auth/me when first
// needed and kept in memory only (never in storage).

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    const e = (body && body.error) || {};
    super(e.message || describe(status));
    this.status = status;
    this.code = e.code || (status ? `http_${status}` : 'network');
    this.field = e.field || '';
    // detail is the message without its "field: " prefix, for showing next to the field.
    this.detail = this.field && this.message.startsWith(`${this.field}: `) ? this.message.slice(this.field.length + 2) : this.message;
    this.retryAfter = retryAfter ? Number(retryAfter) : 0;
  }
}

function describe(status) {
  switch (status) {
    case 0: return 'Cannot reach onair. Check your connection and try again.';
    case 401: return 'Your session has ended. Log in again.';
    case 403: return 'You may not do that.';
    case 404: return 'Not found. It may have been deleted.';
    case 429: return 'Too many attempts. Wait a moment and try again.';
    case 503: return 'The server is temporarily unavailable. Try again shortly.';
    default: return `The request failed (${status}).`;
  }
}

let csrf = null;

export function setCsrfToken(token) { csrf = token; }

async function csrfToken() {
  if (!csrf) {
    const me = await api('GET', '/api/v1/auth/me');
    csrf = me.csrf_token;
  }
  return csrf;
}

export async function api(method, path, body, retried = false) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && document.body.dataset.userId) {
    headers['X-CSRF-Token'] = await csrfToken();
  }
  let res;
  try {
    res = await fetch(path, {
      method, headers, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, null);
  }
  if (res.status === 204) return null;
  let data = null;
  try { data = await res.json(); } catch { /* not JSON */ }
  if (!res.ok) {
    const err = new ApiError(res.status, data, res.headers.get('Retry-After'));
    if (err.code === 'csrf' && csrf && !retried) {
      csrf = null; // a new session (logged in elsewhere): fetch its token and try once more
      return api(method, path, body, true);
    }
    throw err;
  }
  return data;
}
