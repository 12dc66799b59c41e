// AI status (provider and why, models, per-step ms, batches), the cluster's silos and devices, the bus link.
import { getJson, esc } from './api.js';

const table = (rows, cols) => rows && rows.length
  ? `<table><thead><tr>${cols.map((c) => `<th>${esc(c[0])}</th>`).join('')}</tr></thead><tbody>${rows.map((r) =>
    `<tr>${cols.map((c) => `<td>${esc(typeof c[1] === 'function' ? c[1](r) : r[c[1]])}</td>`).join('')}</tr>`).join('')}</tbody></table>`
  : '<p class="muted">none</p>';

const raw = (o) => `<details><summary>all fields</summary><pre>${esc(JSON.stringify(o, null, 2))}</pre></details>`;

async function section(el, path, draw) {
  try {
    const body = await getJson(path);
    el.innerHTML = draw(body) + raw(body);
  } catch (e) {
    el.innerHTML = `<p class="error">${esc(path)}: ${esc(e.message)}</p>`;
  }
}

const fixed = (v, d = 1) => (typeof v === 'number' ? v.toFixed(d) : v ?? '');

export async function render(main) {
  main.innerHTML = `
    <h2>System</h2>
    <p><a href="/dashboard">Orleans Dashboard</a> · <a href="/metrics">Prometheus metrics</a> · <a href="/healthz">health</a></p>
    <section class="panel"><h3>AI</h3><div id="ai"></div></section>
    <section class="panel"><h3>Device workers</h3><div id="workers"></div></section>
    <section class="panel"><h3>Cluster</h3><div id="cluster"></div></section>
    <section class="panel"><h3>Bus link</h3><div id="relay"></div></section>`;
  const refresh = () => Promise.all([
    section(main.querySelector('#ai'), '/api/v1/ai/status', (a) => `
      <dl class="kv"><dt>provider</dt><dd data-field="provider">${esc(a.provider)}</dd><dt>why</dt><dd>${esc(a.provider_reason)}</dd>
        <dt>providers offered</dt><dd>${esc((a.providers || []).join(', '))}</dd>
        ${a.swap_engine ? `<dt>swap engine</dt><dd>${esc(a.swap_engine)}</dd>` : ''}</dl>
      <h4>Models</h4>${table(a.models, [['kind', 'kind'], ['available', (m) => (m.available ? 'yes' : 'no')], ['path', 'path'], ['why not', 'reason'], ['sessions', (m) => (m.sessions || []).join('; ')]])}
      <h4>Steps per silo</h4>${table((a.silos || []).flatMap((s) => (s.steps || []).map((st) => ({ silo: s.silo, ...st }))),
        [['silo', 'silo'], ['step', 'name'], ['runs', 'runs'], ['frames', 'frames'], ['ms per frame', (st) => fixed(st.ms_per_frame, 2)], ['status', 'status']])}
      <h4>Devices</h4>${table((a.silos || []).flatMap((s) => (s.devices || []).map((d) => ({ silo: s.silo, ...d }))),
        [['silo', 'silo'], ['device', 'device'], ['provider', 'provider'], ['running', (d) => (d.running ? 'yes' : 'no')], ['queue', 'queue_depth'],
          ['fps out', (d) => fixed(d.fps_out)], ['steps ms', (d) => fixed(d.steps_ms, 2)], ['load', (d) => fixed(d.load, 2)]])}`),
    section(main.querySelector('#workers'), '/api/v1/video_processing/pipeline/status', (p) => table(p.devices,
      [['device', 'device'], ['silo', 'silo'], ['provider', 'provider'], ['why', 'provider_reason'], ['health', 'health'], ['batches', 'batches'],
        ['mean batch', (d) => fixed(d.avg_batch_size, 2)], ['decode ms', (d) => fixed(d.decode_ms, 2)], ['steps ms', (d) => fixed(d.steps_ms, 2)],
        ['encode ms', (d) => fixed(d.encode_ms, 2)], ['fps out', (d) => fixed(d.fps_out)]])),
    section(main.querySelector('#cluster'), '/api/v1/cluster/status', (c) => `
      <dl class="kv"><dt>mode</dt><dd>${esc(c.mode)}</dd><dt>clustering</dt><dd>${esc(c.clustering)}</dd><dt>active silos</dt><dd>${c.active_silos}</dd><dt>dead silos</dt><dd>${c.dead_silos}</dd></dl>
      ${table(c.silos, [['name', 'name'], ['status', 'status'], ['host', 'host'], ['address', 'address'], ['role', 'role'], ['devices', (s) => (s.devices || []).join(', ')]])}`),
    section(main.querySelector('#relay'), '/api/v1/relay/status', (r) => `<dl class="kv">${Object.entries(r).filter(([, v]) => typeof v !== 'object').map(([k, v]) =>
      `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}</dl>`),
  ]);
  await refresh();
  setInterval(refresh, 5000);
}
