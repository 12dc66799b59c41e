// HTTP and WebSocket access to the service, with the token of this tab (sessionStorage) when it asks for one.
const TOKEN_KEY = 'blankend.token';

export const getToken = () => sessionStorage.getItem(TOKEN_KEY);
export const setToken = (t) => t ? sessionStorage.setItem(TOKEN_KEY, t) : sessionStorage.removeItem(TOKEN_KEY);

let asking = null;

/** Shows the token dialog once, however many requests got a 401 meanwhile; resolves with the new token. */
export function askToken(message) {
  if (asking) return asking;
  const dialog = document.getElementById('token-dialog');
  const input = document.getElementById('token-input');
  document.getElementById('token-error').textContent = message || '';
  input.value = '';
  asking = new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      asking = null;
      setToken(input.value.trim());
      resolve(getToken());
      // Start the page again with the token: its sockets and what it may change (canControl) depend on it.
      location.reload();
    }, { once: true });
  });
  dialog.showModal();
  return asking;
}

export class ApiError extends Error {
  constructor(status, title, detail) {
    super(`${status} ${title}${detail ? ': ' + detail : ''}`);
    this.status = status;
  }
}

/** fetch with the Bearer token; a 401 asks for a token and tries again. Answers the Response. */
export async function request(path, options = {}) {
  for (let attempt = 0; ; attempt++) {
    const headers = new Headers(options.headers || {});
    const token = getToken();
    if (token) headers.set('Authorization', 'Bearer ' + token);
    const res = await fetch(path, { ...options, headers });
    if (res.status !== 401 || attempt >= 3) return res;
    await askToken(token ? 'That token was refused.' : '');
  }
}

async function fail(res) {
  let title = res.statusText, detail = '';
  try {
    const p = await res.json();
    title = p.title || title;
    detail = p.detail || '';
  } catch { /* not problem+json */ }
  throw new ApiError(res.status, title, detail);
}

export async function getJson(path) {
  const res = await request(path);
  if (!res.ok) await fail(res);
  return res.json();
}

export async function postJson(path, body) {
  const res = await request(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) await fail(res);
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

export async function postImage(path, file) {
  const type = file.type === 'image/png' ? 'image/png' : 'image/jpeg';
  const res = await request(path, { method: 'POST', headers: { 'Content-Type': type }, body: file });
  if (!res.ok) await fail(res);
  return res.json();
}

export async function del(path) {
  const res = await request(path, { method: 'DELETE' });
  if (!res.ok) await fail(res);
}

/** ws:// or wss:// URL of a WebSocket path on this service, with the token as access_token (browsers cannot
 *  set headers on a WebSocket). */
export function wsUrl(path, params) {
  const url = new URL(path, location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, v);
  const token = getToken();
  if (token) url.searchParams.set('access_token', token);
  return url.toString();
}

/** Whether this token may change settings. A body the service refuses (unknown key: 400, nothing changes) tells
 *  it without changing anything: 400 = allowed, 403 = a read-only (view) token. Without a token the service is
 *  open (or its first answer is a 401, and the page starts again with the token asked for). */
export async function canControl() {
  if (!getToken()) return true;
  try {
    const res = await request('/api/v1/video_processing/pipeline/config', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"console_probe":true}',
    });
    return res.status !== 403;
  } catch {
    return true;
  }
}

export const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
export const num = (v, digits = 1) => (typeof v === 'number' ? v.toFixed(digits) : '-');
