// Settings that change the service: the realtime (AI) pipeline, the video-processing pipeline, per-source
// overrides, the reference face and background images, and recordings.
import { getJson, postJson, postImage, del, request, esc, ApiError } from './api.js';

const STEPS = ['detect', 'mesh', 'swap', 'matte', 'depth'];

export async function render(main, { control }) {
  main.innerHTML = `
    <h2>Controls</h2>
    <p id="readonly-note" class="error hidden">This token is read-only (view): the controls are disabled.</p>
    <form class="panel" id="realtime-form">
      <h3>Realtime (AI) pipeline <span class="muted" id="realtime-version"></span></h3>
      <div class="row"><label><input type="checkbox" name="enabled">enabled for every source</label>
        <label>workers <input type="number" name="workers" min="1" max="64"></label>
        <label>face detect every <input type="number" name="face_detect_interval" min="1" max="10000"> frames</label>
        <label><input type="checkbox" name="simple_forward">simple forward (no inference)</label></div>
      <div class="row">steps ${STEPS.map((s) => `<label><input type="checkbox" name="step" value="${s}">${s}</label>`).join('')}</div>
      <div class="row"><label>background <select name="bg_kind"><option>color</option><option>image</option><option>blur</option></select></label>
        <label>colour <input type="color" name="bg_color"></label>
        <label>blur radius <input type="number" name="blur_radius" min="1" max="200"></label></div>
      <div class="row"><button type="submit">Apply</button><span class="muted" data-note></span></div>
    </form>
    <section class="panel" id="images">
      <h3>Images</h3>
      <div class="row">
        <label>reference face <input type="file" id="reference-file" accept="image/jpeg,image/png"></label>
        <img id="reference-preview" class="preview hidden" alt="reference face preview">
        <button type="button" id="reference-upload">Upload</button><button type="button" id="reference-clear">Clear</button>
      </div>
      <div class="row">
        <label>background image <input type="file" id="background-file" accept="image/jpeg,image/png"></label>
        <img id="background-preview" class="preview hidden" alt="background preview">
        <button type="button" id="background-upload">Upload</button><button type="button" id="background-clear">Clear</button>
      </div>
      <p class="muted" id="images-note"></p>
    </section>
    <form class="panel" id="processing-form">
      <h3>Video processing pipeline <span class="muted" id="processing-version"></span></h3>
      <div class="row"><label><input type="checkbox" name="enabled">enabled for every source</label>
        <label><input type="checkbox" name="reencode_enabled">re-encode</label>
        <label>JPEG quality <input type="number" name="jpeg_quality" min="1" max="100"></label>
        <label>fps limit <input type="number" name="fps_limit" min="0"></label>
        <label>workers <input type="number" name="workers" min="1"></label></div>
      <div class="row"><button type="submit">Apply</button><span class="muted" data-note></span></div>
    </form>
    <form class="panel" id="override-form">
      <h3>Per source</h3>
      <div class="row"><label>source <input name="source" list="source-list" required></label><datalist id="source-list"></datalist>
        <label>AI <select name="rt_enabled"><option value="">inherit</option><option value="true">on</option><option value="false">off</option></select></label>
        <label>steps <input name="rt_steps" placeholder="e.g. matte or detect,swap"></label>
        <label>processing <select name="vp_enabled"><option value="">inherit</option><option value="true">on</option><option value="false">off</option></select></label>
        <label>fps limit <input type="number" name="vp_fps_limit" min="0"></label></div>
      <div class="row"><button type="submit">Apply</button><button type="button" id="override-reset">Reset to global</button><span class="muted" data-note></span></div>
      <table><thead><tr><th>source</th><th>AI</th><th>steps</th><th>processing</th><th>fps limit</th></tr></thead><tbody id="overrides"></tbody></table>
    </form>
    <section class="panel" id="recordings">
      <h3>Recordings</h3>
      <form class="row" id="record-form">
        <label>source <input name="source" list="source-list" required></label>
        <label>kind <select name="kind"><option>raw</option><option>processed</option></select></label>
        <label>fps <input type="number" name="fps" min="1" max="120" value="30"></label>
        <button type="submit" id="record-start">Start</button><button type="button" id="record-stop">Stop</button>
        <span class="muted" data-note></span>
      </form>
      <p class="muted" id="recordings-note"></p>
      <table><thead><tr><th>id</th><th>source</th><th>kind</th><th>state</th><th>size</th><th>started</th><th>ended</th><th></th></tr></thead>
        <tbody id="recordings-list"></tbody></table>
    </section>`;

  const say = (form, text, bad) => {
    const n = form.querySelector('[data-note]');
    n.textContent = text;
    n.className = bad ? 'error' : 'muted';
  };
  const guard = (form, fn) => form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try { say(form, await fn(new FormData(form)) || 'applied'); } catch (err) { say(form, err.message, true); }
  });
  const int = (v) => (v === '' || v === null ? undefined : Number(v));

  // --- realtime ---
  const rt = main.querySelector('#realtime-form');
  const loadRealtime = async () => {
    const c = await getJson('/api/v1/realtime_pipeline/config');
    main.querySelector('#realtime-version').textContent = 'v' + c.config_version;
    rt.enabled.checked = c.enabled;
    rt.workers.value = c.workers;
    rt.face_detect_interval.value = c.face_detect_interval;
    rt.simple_forward.checked = c.simple_forward;
    const on = new Set(String(c.steps || '').split(',').filter(Boolean));
    for (const cb of rt.querySelectorAll('input[name=step]')) cb.checked = on.has(cb.value);
    const bg = c.background || {};
    rt.bg_kind.value = bg.kind || 'color';
    rt.bg_color.value = bg.color || '#00ff00';
    rt.blur_radius.value = bg.blur_radius || 21;
    return c;
  };
  guard(rt, async (f) => {
    const steps = f.getAll('step').join(',');
    await postJson('/api/v1/realtime_pipeline/config', {
      enabled: rt.enabled.checked, workers: int(f.get('workers')), face_detect_interval: int(f.get('face_detect_interval')),
      simple_forward: rt.simple_forward.checked, ...(steps ? { steps } : {}),
      background: { kind: f.get('bg_kind'), color: f.get('bg_color').toUpperCase(), blur_radius: int(f.get('blur_radius')) },
    });
    await loadRealtime();
  });

  // --- images ---
  const note = main.querySelector('#images-note');
  for (const kind of ['reference', 'background']) {
    const file = main.querySelector(`#${kind}-file`);
    const preview = main.querySelector(`#${kind}-preview`);
    file.addEventListener('change', () => {
      if (preview.src) URL.revokeObjectURL(preview.src);
      const f = file.files[0];
      preview.classList.toggle('hidden', !f);
      if (f) preview.src = URL.createObjectURL(f);
    });
    main.querySelector(`#${kind}-upload`).addEventListener('click', async () => {
      const f = file.files[0];
      if (!f) { note.textContent = `choose a ${kind} image first`; return; }
      try {
        const r = await postImage('/api/v1/ai/' + kind, f);
        note.textContent = `${kind} uploaded (version ${r.version}, ${r.bytes} bytes)`;
        if (kind === 'background') await loadRealtime();
      } catch (err) { note.textContent = err.message; }
    });
    main.querySelector(`#${kind}-clear`).addEventListener('click', async () => {
      try { await del('/api/v1/ai/' + kind); note.textContent = kind + ' cleared'; } catch (err) { note.textContent = err.message; }
    });
  }

  // --- video processing ---
  const vp = main.querySelector('#processing-form');
  const loadProcessing = async () => {
    const c = await getJson('/api/v1/video_processing/pipeline/config');
    const g = c.global || c;
    main.querySelector('#processing-version').textContent = c.version !== undefined ? 'v' + c.version : '';
    vp.enabled.checked = g.enabled;
    vp.reencode_enabled.checked = g.reencode_enabled;
    vp.jpeg_quality.value = g.jpeg_quality;
    vp.fps_limit.value = g.fps_limit;
    vp.workers.value = g.workers;
    return c;
  };
  guard(vp, async (f) => {
    await postJson('/api/v1/video_processing/pipeline/config', {
      enabled: vp.enabled.checked, reencode_enabled: vp.reencode_enabled.checked,
      jpeg_quality: int(f.get('jpeg_quality')), fps_limit: int(f.get('fps_limit')), workers: int(f.get('workers')),
    });
    await loadProcessing();
  });

  // --- per source ---
  const ov = main.querySelector('#override-form');
  const loadOverrides = async (rtc, vpc) => {
    const rows = new Map();
    for (const s of rtc?.sources || []) rows.set(s.source, { ...rows.get(s.source), rt: s });
    for (const s of vpc?.overrides || vpc?.sources || []) rows.set(s.source, { ...rows.get(s.source), vp: s });
    const show = (v) => (v === null || v === undefined ? 'inherit' : esc(v));
    main.querySelector('#overrides').innerHTML = [...rows].map(([src, r]) =>
      `<tr><td>${esc(src)}</td><td>${show(r.rt?.enabled)}</td><td>${show(r.rt?.steps)}</td><td>${show(r.vp?.enabled)}</td><td>${show(r.vp?.fps_limit)}</td></tr>`).join('');
    const stream = await getJson('/api/v1/stream/status').catch(() => null);
    main.querySelector('#source-list').innerHTML = (stream?.sources || []).map((s) => `<option value="${esc(s.source)}">`).join('');
  };
  const reloadAll = async () => {
    const [rtc, vpc] = await Promise.all([loadRealtime(), loadProcessing()]);
    await loadOverrides(rtc, vpc);
  };
  guard(ov, async (f) => {
    const source = f.get('source');
    const rtBody = { source };
    if (f.get('rt_enabled')) rtBody.enabled = f.get('rt_enabled') === 'true';
    if (f.get('rt_steps')) rtBody.steps = f.get('rt_steps');
    if (Object.keys(rtBody).length > 1) await postJson('/api/v1/realtime_pipeline/config', rtBody);
    const vpBody = { source };
    if (f.get('vp_enabled')) vpBody.enabled = f.get('vp_enabled') === 'true';
    if (f.get('vp_fps_limit') !== '') vpBody.fps_limit = int(f.get('vp_fps_limit'));
    if (Object.keys(vpBody).length > 1) await postJson('/api/v1/video_processing/pipeline/config', vpBody);
    await reloadAll();
    return 'applied to ' + source;
  });
  main.querySelector('#override-reset').addEventListener('click', async () => {
    const source = ov.source.value;
    if (!source) { say(ov, 'name a source', true); return; }
    try {
      await postJson('/api/v1/realtime_pipeline/config', { source, reset: true });
      await postJson('/api/v1/video_processing/pipeline/config', { source, reset: true });
      await reloadAll();
      say(ov, source + ' follows the global settings');
    } catch (err) { say(ov, err.message, true); }
  });

  // --- recordings ---
  const rec = main.querySelector('#record-form');
  const list = main.querySelector('#recordings-list');
  const recNote = main.querySelector('#recordings-note');
  const loadRecordings = async () => {
    try {
      const r = await getJson('/api/v1/recordings');
      const items = Array.isArray(r) ? r : r.recordings || [];
      recNote.textContent = items.length ? '' : 'No recordings yet.';
      list.innerHTML = items.map((x) => `<tr data-id="${esc(x.id)}"><td>${esc(x.id)}</td><td>${esc(x.source)}</td><td>${esc(x.kind)}</td>
        <td>${esc(x.state)}${x.reason ? ' (' + esc(x.reason) + ')' : ''}</td><td>${x.bytes ?? '-'}</td><td>${esc(x.started)}</td><td>${esc(x.ended ?? '')}</td>
        <td>${x.state === 'live' ? '' : `<a href="/api/v1/recordings/${encodeURIComponent(x.id)}/file" download="${esc(x.id)}.mp4" data-download>download</a>
        <button type="button" data-delete="${esc(x.id)}" ${control ? '' : 'disabled'}>delete</button>`}</td></tr>`).join('');
    } catch (err) {
      list.innerHTML = '';
      recNote.textContent = err instanceof ApiError && (err.status === 404 || err.status === 405)
        ? 'This service has no recordings list (GET /api/v1/recordings); start and stop still work.'
        : 'recordings unavailable: ' + err.message;
    }
  };
  list.addEventListener('click', async (e) => {
    const id = e.target.dataset.delete;
    if (id) {
      try { await del('/api/v1/recordings/' + encodeURIComponent(id)); } catch (err) { recNote.textContent = err.message; }
      await loadRecordings();
    } else if (e.target.matches('a[data-download]') && sessionStorage.getItem('blankend.token')) {
      // With a token the plain link cannot authenticate: fetch it with the header and hand over a blob.
      e.preventDefault();
      const res = await request(e.target.getAttribute('href'));
      if (!res.ok) { recNote.textContent = 'download failed: ' + res.status; return; }
      const a = document.createElement('a');
      a.href = URL.createObjectURL(await res.blob());
      a.download = e.target.getAttribute('download');
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    }
  });
  guard(rec, async (f) => {
    const r = await postJson('/api/v1/realtime_pipeline/record/start', { source: f.get('source'), kind: f.get('kind'), fps: int(f.get('fps')) });
    await loadRecordings();
    return `recording ${r.id}`;
  });
  main.querySelector('#record-stop').addEventListener('click', async () => {
    try {
      const r = await postJson('/api/v1/realtime_pipeline/record/stop', { source: rec.source.value });
      say(rec, `stopped: ${r.frames ?? '?'} frames, ${r.duration_s ?? '?'} s${r.state ? ' (' + r.state + ')' : ''}`);
    } catch (err) { say(rec, err.message, true); }
    await loadRecordings();
  });

  if (!control) {
    main.querySelector('#readonly-note').classList.remove('hidden');
    for (const el of main.querySelectorAll('form input, form select, form button, #images input, #images button')) el.disabled = true;
  }
  try { await reloadAll(); } catch (err) { main.querySelector('#readonly-note').textContent = 'settings unavailable: ' + err.message; main.querySelector('#readonly-note').classList.remove('hidden'); }
  await loadRecordings();
  setInterval(loadRecordings, 3000);
}
