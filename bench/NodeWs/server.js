// Node.js + ws relay: the external peer the gateway and bench/BareRelay are measured against.
//   (cd bench/NodeWs && npm ci) && node bench/NodeWs/server.js --port 8200
// Same protocol as bench/BareRelay:
//   /video_in?client_id=SRC          each binary message = one JPEG (FF D8 .. FF D9)
//   /video_out?source=SRC&meta=0|1   every frame of SRC (all sources if absent) as one binary message,
//                                    preceded by a JSON text message when meta=1
//   GET /healthz                     "ok"
// Each viewer has a bounded queue of 8 frames, dropping the oldest when full, and one send in flight
// (the next frame goes when ws calls back, i.e. when the socket took the bytes): a viewer that stops
// reading fills only its own queue. The payload is copied once at ingest and shared by every viewer.
'use strict';

const http = require('node:http');
const { WebSocketServer } = require('ws');

const QUEUE_CAPACITY = 8;
const MAX_FRAME_BYTES = 16 * 1024 * 1024;

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const port = Number(arg('--port', '8200'));
const host = arg('--host', '127.0.0.1');

const sources = new Map(); // id -> { seq, bytes, invalid }
const viewers = new Set();

function isJpeg(b) {
  const n = b.length;
  return n >= 4 && b[0] === 0xff && b[1] === 0xd8 && b[n - 2] === 0xff && b[n - 1] === 0xd9;
}

class Viewer {
  constructor(ws, source, meta) {
    this.ws = ws;
    this.source = source;
    this.meta = meta;
    this.queue = [];
    this.sending = false;
    this.sent = 0;
    this.dropped = 0;
  }

  offer(frame) {
    if (this.queue.length >= QUEUE_CAPACITY) {
      this.queue.shift();
      this.dropped++;
    }
    this.queue.push(frame);
    this.pump();
  }

  pump() {
    if (this.sending || this.queue.length === 0 || this.ws.readyState !== this.ws.OPEN) return;
    const f = this.queue.shift();
    this.sending = true;
    if (this.meta) this.ws.send(f.meta(), { binary: false });
    this.ws.send(f.payload, { binary: true }, (err) => {
      this.sending = false;
      if (err) return;
      this.sent++;
      this.pump();
    });
  }
}

function publish(sourceId, state, data) {
  if (!isJpeg(data)) {
    state.invalid++;
    return;
  }
  const seq = ++state.seq;
  state.bytes += data.length;
  const ts = Date.now();
  let meta = null; // built once, when the first meta=1 viewer needs it
  const frame = {
    payload: data,
    meta() {
      if (meta === null) meta = JSON.stringify({ seq, source: sourceId, kind: 'raw', ts_ms: ts, bytes: data.length });
      return meta;
    },
  };
  for (const v of viewers) {
    if (v.source === null || v.source === sourceId) v.offer(frame);
  }
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
    return;
  }
  if (url.pathname === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({
      sources: Object.fromEntries([...sources].map(([k, s]) => [k, { frames: s.seq, bytes: s.bytes, invalid: s.invalid }])),
      viewers: [...viewers].map((v) => ({ source: v.source, meta: v.meta, sent: v.sent, dropped: v.dropped })),
    }));
    return;
  }
  res.writeHead(400, { 'content-type': 'text/plain' });
  res.end('websocket expected');
});

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_FRAME_BYTES });

server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname !== '/video_in' && url.pathname !== '/video_out') {
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    if (url.pathname === '/video_in') {
      const id = url.searchParams.get('client_id') || 'SRC';
      let state = sources.get(id);
      if (!state) sources.set(id, (state = { seq: 0, bytes: 0, invalid: 0 }));
      ws.on('message', (data, isBinary) => {
        if (isBinary) publish(id, state, data);
      });
    } else {
      const source = url.searchParams.get('source') || null;
      const meta = ['1', 'true'].includes(url.searchParams.get('meta'));
      const v = new Viewer(ws, source, meta);
      viewers.add(v);
      ws.on('close', () => viewers.delete(v));
    }
    ws.on('error', () => {});
  });
});

function stop() {
  for (const c of wss.clients) c.close(1001, 'server stopping');
  server.close();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

server.listen(port, host, () => console.log(`node ws relay listening on http://${host}:${port} (node ${process.version})`));
