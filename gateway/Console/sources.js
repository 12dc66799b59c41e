// Every live source with a live thumbnail, fps in/out, drops and kind; a click opens its viewer.
import { getJson, esc, num } from './api.js';
import { ThumbnailFeed } from './view.js';

export async function render(main) {
  main.innerHTML = `<h2>Sources</h2><p class="muted" id="sources-note">Loading…</p><div class="grid" id="sources"></div>`;
  const grid = main.querySelector('#sources');
  const cards = new Map();
  const kinds = new Map();

  const card = (source) => {
    let c = cards.get(source);
    if (c) return c;
    c = document.createElement('div');
    c.className = 'card source-card';
    c.dataset.source = source;
    c.innerHTML = `<h3>${esc(source)}</h3><canvas width="320" height="180"></canvas><dl class="kv"></dl>`;
    c.addEventListener('click', () => { location.href = '/?source=' + encodeURIComponent(source); });
    grid.appendChild(c);
    cards.set(source, c);
    return c;
  };

  new ThumbnailFeed((meta, bitmap) => {
    kinds.set(meta.source, meta.kind);
    const canvas = card(meta.source).querySelector('canvas');
    const ctx = canvas.getContext('2d');
    ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  });

  const refresh = async () => {
    const note = main.querySelector('#sources-note');
    try {
      const [stream, pipeline] = await Promise.all([
        getJson('/api/v1/stream/status'),
        getJson('/api/v1/video_processing/pipeline/status').catch(() => null),
      ]);
      const proc = new Map((pipeline?.sources || []).map((s) => [s.source, s]));
      const live = stream.sources || [];
      note.textContent = live.length ? `${live.length} live source(s); click one to watch it.` :
        'No live source yet. Publish one from the Camera page, or send JPEGs to /video_in?client_id=SRC.';
      for (const s of live) {
        const p = proc.get(s.source);
        const kind = kinds.get(s.source) || (p?.enabled ? 'processed' : 'raw');
        card(s.source).querySelector('dl').innerHTML =
          `<dt>kind</dt><dd data-field="kind">${esc(kind)}</dd>` +
          `<dt>fps in / out</dt><dd>${num(p?.fps_in)} / ${num(p?.fps_out)}</dd>` +
          `<dt>frames</dt><dd>${s.frames_in}</dd>` +
          `<dt>drops</dt><dd>${p ? p.fps_dropped + p.overflow_dropped + p.bypassed : 0}</dd>` +
          `<dt>silo</dt><dd>${esc(s.silo)}</dd>`;
      }
    } catch (e) {
      note.textContent = 'status unavailable: ' + e.message;
    }
  };
  await refresh();
  setInterval(refresh, 2000);
}
