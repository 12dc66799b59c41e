// The console's entry: picks the page from the query (?page=..., ?source=SRC opens the viewer).
import { canControl, getToken, request } from './api.js';

const pages = {
  sources: () => import('./sources.js'),
  viewer: () => import('./viewer.js'),
  controls: () => import('./controls.js'),
  system: () => import('./system.js'),
  camera: () => import('./camera.js'),
};

async function main() {
  const params = new URLSearchParams(location.search);
  let page = params.get('page') || (params.has('source') ? 'viewer' : 'sources');
  if (!(page in pages)) page = 'sources';
  for (const a of document.querySelectorAll('header nav a')) a.classList.toggle('active', a.dataset.page === page);
  const main = document.getElementById('main');
  main.dataset.page = page;
  // A locked service answers 401 here and the token is asked for before any socket opens (a WebSocket refused
  // with 401 only shows as a failed connection); an open one answers at once.
  if (!getToken()) await request('/api/v1/stream/status');
  const module = await pages[page]();
  // Asked lazily by the pages that change things; a read-only (view) token shows their controls disabled.
  const control = page === 'controls' || page === 'viewer' ? await canControl() : true;
  document.body.dataset.control = control ? '1' : '0';
  document.getElementById('access').textContent = (getToken() ? 'token set' : '') + (control ? '' : ' · read-only');
  await module.render(main, { params, control });
}

main().catch((e) => {
  document.getElementById('main').textContent = 'console failed: ' + e.message;
});
