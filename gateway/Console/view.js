// A live view of /video_out on a canvas: frames decoded off the main thread (createImageBitmap), the newest
// wins while one decodes, with the overlay's figures (fps, latency now - ts_ms, seq gaps, kind) and face boxes.
import { wsUrl } from './api.js';

export class FrameView {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {{source?: string, kind?: string, meta?: boolean, overlay?: HTMLElement, onStats?: Function}} options
   */
  constructor(canvas, options) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.options = { meta: true, kind: 'any', ...options };
    this.times = [];
    this.stats = { frames: 0, fps: 0, latency: null, gaps: 0, kind: '-', source: options.source || '*', width: 0, height: 0, state: 'connecting' };
    this.lastSeq = new Map();
    this.pendingMeta = null;
    this.next = null;
    this.decoding = false;
    this.closed = false;
    this.timer = setInterval(() => this.render(), 500);
    this.connect();
  }

  connect() {
    if (this.closed) return;
    const params = { source: this.options.source, meta: this.options.meta ? 1 : 0 };
    if (this.options.kind && this.options.kind !== 'any') params.kind = this.options.kind;
    const ws = new WebSocket(wsUrl('/video_out', params));
    ws.binaryType = 'blob';
    this.ws = ws;
    ws.onopen = () => { this.stats.state = 'live'; this.render(); };
    ws.onmessage = (e) => this.onMessage(e.data);
    ws.onclose = () => {
      this.stats.state = 'closed';
      this.render();
      // Reconnect while the page shows it: a restart of the service, a dropped network.
      if (!this.closed) this.retry = setTimeout(() => this.connect(), 1500);
    };
  }

  onMessage(data) {
    if (typeof data === 'string') {
      try { this.pendingMeta = JSON.parse(data); } catch { this.pendingMeta = null; }
      return;
    }
    const meta = this.pendingMeta;
    this.pendingMeta = null;
    const now = performance.now();
    this.times.push(now);
    while (this.times.length && this.times[0] < now - 3000) this.times.shift();
    this.stats.frames++;
    if (meta) {
      this.stats.kind = meta.kind;
      this.stats.faces = meta.faces ? meta.faces.length : null;
      this.stats.source = meta.source;
      this.stats.latency = Date.now() - meta.ts_ms;
      // Gaps per source (and epoch: a new activation starts its seq again).
      const key = meta.source + '/' + meta.epoch;
      const last = this.lastSeq.get(key);
      if (last !== undefined && meta.seq > last + 1) this.stats.gaps += meta.seq - last - 1;
      this.lastSeq.set(key, meta.seq);
    }
    this.next = { blob: data, meta };
    if (!this.decoding) this.decodeNext();
  }

  async decodeNext() {
    this.decoding = true;
    while (this.next && !this.closed) {
      const { blob, meta } = this.next;
      this.next = null;
      try {
        const bitmap = await createImageBitmap(blob);
        this.draw(bitmap, meta);
        bitmap.close();
      } catch { /* a frame the browser cannot decode: skip it */ }
    }
    this.decoding = false;
  }

  draw(bitmap, meta) {
    const c = this.canvas;
    if (c.width !== bitmap.width || c.height !== bitmap.height) {
      c.width = bitmap.width;
      c.height = bitmap.height;
    }
    this.stats.width = bitmap.width;
    this.stats.height = bitmap.height;
    this.ctx.drawImage(bitmap, 0, 0);
    if (!this.drawn) { this.drawn = true; this.render(); } // the overlay at once, not at the next tick
    const faces = meta && meta.faces;
    if (faces && faces.length) {
      const ctx = this.ctx;
      ctx.lineWidth = Math.max(2, bitmap.width / 320);
      ctx.strokeStyle = '#22d3ee';
      ctx.fillStyle = '#f472b6';
      for (const f of faces) {
        const [x0, y0, x1, y1] = f.box;
        ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
        const k = f.keypoints || [];
        for (let i = 0; i + 1 < k.length; i += 2) ctx.fillRect(k[i] - 2, k[i + 1] - 2, 4, 4);
      }
    }
  }

  fps() {
    const t = this.times;
    if (t.length < 2) return 0;
    const last = t[t.length - 1];
    if (performance.now() - last > 1000) return 0; // nothing for a second: stalled, not the old rate
    return (t.length - 1) * 1000 / (last - t[0]);
  }

  render() {
    const s = this.stats;
    s.fps = this.fps();
    if (this.options.overlay) {
      const o = this.options.overlay;
      o.textContent = `${s.source}  ${s.kind}  ${s.state}\n` +
        `${s.fps.toFixed(1)} fps  ${s.width}x${s.height}\n` +
        `latency ${s.latency === null ? '-' : s.latency + ' ms'}  gaps ${s.gaps}  frames ${s.frames}` +
        (s.faces == null ? '' : `\nfaces ${s.faces}`);
      // Machine-readable copies for tests and scripts.
      o.dataset.fps = s.fps.toFixed(2);
      // The arrivals the rate is over, as epoch ms: a script can compare with what was sent in the same span.
      const t = this.times;
      o.dataset.fpsFrom = t.length ? String(Math.round(performance.timeOrigin + t[0])) : '';
      o.dataset.fpsTo = t.length ? String(Math.round(performance.timeOrigin + t[t.length - 1])) : '';
      o.dataset.kind = s.kind;
      o.dataset.frames = String(s.frames);
      o.dataset.latency = s.latency === null ? '' : String(s.latency);
      o.dataset.gaps = String(s.gaps);
      o.dataset.state = s.state;
      o.dataset.faces = s.faces == null ? '' : String(s.faces);
    }
    if (this.options.onStats) this.options.onStats(s);
  }

  close() {
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.retry);
    if (this.ws) this.ws.close();
  }
}

/** All sources on one socket (/video_out?meta=1): each frame goes to its source's thumbnail, decoded at most
 *  every `interval` ms per source. */
export class ThumbnailFeed {
  constructor(onFrame, interval = 250) {
    this.onFrame = onFrame;
    this.interval = interval;
    this.last = new Map();
    this.pending = null;
    this.closed = false;
    this.connect();
  }

  connect() {
    if (this.closed) return;
    const ws = new WebSocket(wsUrl('/video_out', { meta: 1 }));
    ws.binaryType = 'blob';
    this.ws = ws;
    ws.onmessage = async (e) => {
      if (typeof e.data === 'string') { try { this.pending = JSON.parse(e.data); } catch { this.pending = null; } return; }
      const meta = this.pending;
      this.pending = null;
      if (!meta) return;
      const now = performance.now();
      if (now - (this.last.get(meta.source) || 0) < this.interval) return;
      this.last.set(meta.source, now);
      try {
        const bitmap = await createImageBitmap(e.data);
        this.onFrame(meta, bitmap);
        bitmap.close();
      } catch { /* skip */ }
    };
    ws.onclose = () => { if (!this.closed) this.retry = setTimeout(() => this.connect(), 2000); };
  }

  close() {
    this.closed = true;
    clearTimeout(this.retry);
    if (this.ws) this.ws.close();
  }
}
