// One source live: /video_out?meta=1 on a canvas with its overlay; raw beside processed (kind=raw and
// kind=processed) while processing is on for the source; the source's AI steps can be switched here too.
import { getJson, postJson, esc } from './api.js';
import { FrameView } from './view.js';

const STEPS = ['detect', 'mesh', 'swap', 'matte', 'depth'];

export async function render(main, { params, control }) {
  const source = params.get('source');
  if (!source) {
    main.innerHTML = `<h2>Viewer</h2><p>Pick a source on the <a href="/">Sources</a> page, or open <code>/?source=SRC</code>.</p>
      <form class="row" id="pick"><input name="source" placeholder="source" required><button>Watch</button></form>`;
    main.querySelector('#pick').addEventListener('submit', (e) => {
      e.preventDefault();
      location.href = '/?source=' + encodeURIComponent(new FormData(e.target).get('source'));
    });
    return;
  }
  main.innerHTML = `
    <h2>Viewer: ${esc(source)}</h2>
    <form class="panel row" id="steps-form">
      <strong>AI steps for this source</strong>
      ${STEPS.map((s) => `<label><input type="checkbox" name="step" value="${s}">${s}</label>`).join('')}
      <button type="submit" id="steps-apply">Apply</button>
      <button type="button" id="steps-reset">Use the global settings</button>
      <span id="steps-note" class="muted"></span>
    </form>
    <div class="viewers" id="viewers"></div>`;
  const box = main.querySelector('#viewers');
  const form = main.querySelector('#steps-form');
  const note = main.querySelector('#steps-note');
  for (const el of form.querySelectorAll('input, button')) el.disabled = !control;
  if (!control) note.textContent = 'read-only token: settings cannot be changed';

  let views = [];
  let layout = null;
  const panel = (kind, title) => {
    const div = document.createElement('div');
    div.className = 'view';
    div.dataset.kind = kind;
    div.innerHTML = `<h4>${esc(title)}</h4><div class="frame"><canvas></canvas><div class="overlay"></div></div>`;
    box.appendChild(div);
    return new FrameView(div.querySelector('canvas'), {
      source, kind, overlay: div.querySelector('.overlay'),
      onStats: (s) => { if (kind === 'any' && s.kind === 'processed') setLayout('dual'); },
    });
  };
  const setLayout = (next) => {
    if (layout === next) return;
    layout = next;
    for (const v of views) v.close();
    box.innerHTML = '';
    box.dataset.layout = next;
    views = next === 'dual' ? [panel('raw', 'raw (kind=raw)'), panel('processed', 'processed (kind=processed)')] : [panel('any', 'live')];
  };

  // Processing on for this source (video processing or AI steps) -> raw beside processed.
  const check = async () => {
    try {
      const [pipeline, realtime] = await Promise.all([
        getJson('/api/v1/video_processing/pipeline/status'),
        getJson('/api/v1/realtime_pipeline/config').catch(() => null),
      ]);
      const stats = (pipeline.sources || []).find((s) => s.source === source);
      setLayout(stats && stats.enabled ? 'dual' : 'single');
      if (realtime && !form.dataset.touched) {
        const own = (realtime.sources || []).find((s) => s.source === source);
        const steps = own && own.enabled !== false && own.steps != null ? own.steps : (realtime.enabled && (!own || own.enabled !== false) ? realtime.steps : '');
        const on = new Set(String(steps || '').split(',').filter(Boolean));
        for (const cb of form.querySelectorAll('input[name=step]')) cb.checked = on.has(cb.value);
      }
    } catch {
      if (!layout) setLayout('single');
    }
  };
  form.addEventListener('change', () => { form.dataset.touched = '1'; });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const steps = [...form.querySelectorAll('input[name=step]:checked')].map((cb) => cb.value);
    try {
      await postJson('/api/v1/realtime_pipeline/config', steps.length ? { source, enabled: true, steps: steps.join(',') } : { source, enabled: false });
      note.textContent = steps.length ? 'on: ' + steps.join(', ') : 'off for this source';
      delete form.dataset.touched;
      await check();
    } catch (err) { note.textContent = err.message; }
  });
  main.querySelector('#steps-reset').addEventListener('click', async () => {
    try {
      await postJson('/api/v1/realtime_pipeline/config', { source, reset: true });
      note.textContent = 'global settings';
      delete form.dataset.touched;
      await check();
    } catch (err) { note.textContent = err.message; }
  });
  await check();
  setInterval(check, 2000);
}
