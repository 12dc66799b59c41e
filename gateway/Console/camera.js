// Publishes this browser's camera to /video_in: getUserMedia -> canvas -> JPEG -> one binary WebSocket message
// per frame, at the chosen size, rate and quality, with the send rate it reaches.
import { wsUrl, esc } from './api.js';

export async function render(main) {
  main.innerHTML = `
    <h2>Camera</h2>
    <form class="panel row" id="camera-form">
      <label>source <input name="source" value="browser" required></label>
      <label>resolution <select name="size"><option value="320x240">320x240</option><option value="640x480" selected>640x480</option><option value="1280x720">1280x720</option><option value="1920x1080">1920x1080</option></select></label>
      <label>fps <select name="fps"><option>5</option><option>10</option><option selected>15</option><option>24</option><option>30</option></select></label>
      <label>quality <input type="number" name="quality" min="10" max="100" value="75"></label>
      <button type="submit" id="camera-start">Start</button><button type="button" id="camera-stop" disabled>Stop</button>
    </form>
    <p id="camera-status" class="muted">Not publishing.</p>
    <p id="camera-rate" data-fps="0" data-sent="0"></p>
    <p id="camera-watch"></p>
    <video class="camera" id="camera-video" muted playsinline autoplay></video>`;
  const form = main.querySelector('#camera-form');
  const status = main.querySelector('#camera-status');
  const rate = main.querySelector('#camera-rate');
  const video = main.querySelector('#camera-video');
  const canvas = document.createElement('canvas');
  let stream = null, ws = null, timer = null, stats = null;

  const stop = () => {
    clearInterval(timer);
    timer = null;
    if (ws) ws.close();
    ws = null;
    if (stream) for (const t of stream.getTracks()) t.stop();
    stream = null;
    form.querySelector('#camera-start').disabled = false;
    form.querySelector('#camera-stop').disabled = true;
  };

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    stop();
    const f = new FormData(form);
    const [w, h] = String(f.get('size')).split('x').map(Number);
    const fps = Number(f.get('fps'));
    const quality = Math.min(100, Math.max(10, Number(f.get('quality')))) / 100;
    const source = String(f.get('source'));
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: w }, height: { ideal: h }, frameRate: { ideal: fps } }, audio: false });
    } catch (err) {
      status.textContent = 'camera unavailable: ' + err.message;
      status.className = 'error';
      return;
    }
    video.srcObject = stream;
    await video.play().catch(() => {});
    ws = new WebSocket(wsUrl('/video_in', { client_id: source }));
    ws.binaryType = 'arraybuffer';
    ws.onmessage = (m) => { if (typeof m.data === 'string') status.textContent = 'service: ' + m.data; };
    ws.onclose = (c) => {
      status.textContent = `closed (${c.code}${c.reason ? ' ' + c.reason : ''})`;
      status.className = c.code === 1000 ? 'muted' : 'error';
      stop();
    };
    ws.onopen = () => {
      status.textContent = `publishing to /video_in?client_id=${source}`;
      status.className = 'ok';
      main.querySelector('#camera-watch').innerHTML = `<a href="/?source=${encodeURIComponent(source)}" target="_blank" rel="noopener">watch ${esc(source)}</a>`;
      form.querySelector('#camera-start').disabled = true;
      form.querySelector('#camera-stop').disabled = false;
      stats = { times: [], bytes: [], sent: 0, skipped: 0 };
      timer = setInterval(() => grab(quality), 1000 / fps);
    };
  });
  form.querySelector('#camera-stop').addEventListener('click', stop);

  let encoding = false;
  const grab = (quality) => {
    if (!ws || ws.readyState !== WebSocket.OPEN || !video.videoWidth) return;
    // Never queue up behind a slow link: skip this tick while a frame is still being encoded or sent.
    if (encoding || ws.bufferedAmount > 2 * 1024 * 1024) { stats.skipped++; return; }
    encoding = true;
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext('2d').drawImage(video, 0, 0);
    canvas.toBlob((blob) => {
      encoding = false;
      if (!blob || !ws || ws.readyState !== WebSocket.OPEN) return;
      ws.send(blob);
      const now = performance.now();
      stats.sent++;
      stats.times.push(now);
      stats.bytes.push(blob.size);
      while (stats.times.length && stats.times[0] < now - 2000) { stats.times.shift(); stats.bytes.shift(); }
      const span = (now - stats.times[0]) / 1000 || 1;
      const fpsNow = (stats.times.length - 1) / span;
      const kbps = stats.bytes.reduce((a, b) => a + b, 0) / 1024 / Math.max(span, 1 / 30);
      rate.textContent = `sending ${fpsNow.toFixed(1)} fps, ${kbps.toFixed(0)} KiB/s, ${canvas.width}x${canvas.height}; ${stats.sent} frames sent, ${stats.skipped} skipped`;
      rate.dataset.fps = fpsNow.toFixed(2);
      rate.dataset.sent = String(stats.sent);
    }, 'image/jpeg', quality);
  };
}
