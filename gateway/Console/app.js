// The console's entry: picks the page from the query (?page=..., ?source=SRC opens the viewer).
import { canControl, getToken } from './api.js';

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
