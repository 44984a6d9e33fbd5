"""The two HTML pages, self-contained (no files, no outside requests): staff status and visitor display.

Both read the server-sent events at /events; a token in the page's own URL
(?token=...) is passed on to /events and /frame.jpg.
"""

_COMMON_JS = r"""
const TOKEN = new URLSearchParams(location.search).get('token');
const q = (extra) => (TOKEN ? '?token=' + encodeURIComponent(TOKEN) + (extra ? '&' + extra : '') : (extra ? '?' + extra : ''));
let updates = 0;
function listen(onData) {
  const es = new EventSource('/events' + q());
  es.onmessage = (ev) => { updates++; document.body.dataset.updates = updates; onData(JSON.parse(ev.data)); };
  es.onerror = () => { document.body.dataset.connection = 'lost'; };
  es.onopen = () => { document.body.dataset.connection = 'ok'; };
}
"""

STAFF = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>image-to-music: status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body { font: 16px/1.4 system-ui, sans-serif; margin: 2em; background: #fafaf7; color: #222; }
 h1 { font-size: 1.4em; } table { border-collapse: collapse; }
 td { padding: .25em 1em .25em 0; border-bottom: 1px solid #ddd; vertical-align: top; }
 td:first-child { color: #666; } .state { font-weight: bold; }
 .playing { color: #17692b; } .closed { color: #555; } .fatal, .recovering, .waiting-for-port { color: #a4161a; }
</style></head>
<body data-updates="0">
<h1>image-to-music kiosk &mdash; <span id="state" class="state">connecting&hellip;</span></h1>
<table id="status"><tbody></tbody></table>
<p><a id="display-link" href="/display">visitor display</a> &middot; <a id="health-link" href="/health">/health (JSON)</a> &middot; <a id="console-link" href="/console">console (controls, the week)</a></p>
<script>""" + _COMMON_JS + r"""
document.getElementById('display-link').href = '/display' + q();
document.getElementById('health-link').href = '/health' + q();
document.getElementById('console-link').href = '/console' + q();
const ROWS = [['uptime_s','uptime (s)'],['hours','opening hours'],['camera','camera'],['picture','picture'],
  ['port','MIDI port'],['port_connected','port connected'],['fps','frames embedded / s'],['events_per_s','events / s'],
  ['lateness_p99_ms','lateness p99 (ms)'],['valence','valence'],['arousal','arousal'],['key','key'],['scene','scene'],
  ['restarts','restarts'],['panics','panics sent'],['last_error','last error']];
const tbody = document.querySelector('#status tbody');
for (const [k, label] of ROWS) {
  const tr = document.createElement('tr'); tr.innerHTML = '<td>' + label + '</td><td id="v-' + k + '">&ndash;</td>';
  tbody.appendChild(tr);
}
listen((d) => {
  const s = document.getElementById('state'); s.textContent = d.state; s.className = 'state ' + d.state;
  for (const [k] of ROWS) {
    const v = d[k]; document.getElementById('v-' + k).textContent = (v === null || v === undefined) ? '\u2013' : String(v);
  }
});
</script></body></html>
"""

DISPLAY = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>image-to-music</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 html, body { margin: 0; height: 100%; background: #101418; color: #e8e4dc; overflow: hidden;
   font-family: Georgia, 'DejaVu Serif', serif; cursor: none; }
 #top { display: flex; height: 68vh; }
 #picture-box { flex: 3; display: flex; align-items: center; justify-content: center; padding: 3vh 2vw; }
 #picture { max-width: 100%; max-height: 100%; border-radius: 6px; box-shadow: 0 0 40px #000a; transition: opacity 1s; }
 #side { flex: 2; display: flex; flex-direction: column; align-items: center; justify-content: center; }
 #va { width: min(40vh, 36vw); height: min(40vh, 36vw); }
 #mood { font-size: 5vh; margin-top: 2vh; letter-spacing: .03em; }
 #key { font-size: 3vh; color: #a9a39a; }
 #roll { display: block; width: 100vw; height: 32vh; }
</style></head>
<body data-updates="0">
<div id="top">
 <div id="picture-box"><img id="picture" alt=""></div>
 <div id="side"><canvas id="va" width="600" height="600"></canvas><div id="mood">&nbsp;</div><div id="key">&nbsp;</div></div>
</div>
<canvas id="roll" width="1920" height="340"></canvas>
<script>""" + _COMMON_JS + r"""
const va = document.getElementById('va'), vctx = va.getContext('2d');
const roll = document.getElementById('roll'), rctx = roll.getContext('2d');
const DOT = '#ffb347', WINDOW_S = 10;
let target = null, shown = null, trail = [], notes = [], received = performance.now();
function mood(v, a) {
  if (v >= 0 && a >= 0) return 'joyful'; if (v < 0 && a >= 0) return 'tense';
  if (v < 0) return 'sombre'; return 'calm';
}
function drawPlane() {
  const W = va.width, H = va.height, c = vctx;
  c.clearRect(0, 0, W, H);
  c.fillStyle = '#182028'; c.beginPath(); c.arc(W / 2, H / 2, W / 2 - 4, 0, 2 * Math.PI); c.fill();
  c.strokeStyle = '#3a4652'; c.lineWidth = 2;
  c.beginPath(); c.moveTo(20, H / 2); c.lineTo(W - 20, H / 2); c.moveTo(W / 2, 20); c.lineTo(W / 2, H - 20); c.stroke();
  c.fillStyle = '#8a939c'; c.font = '30px Georgia, serif'; c.textAlign = 'center';
  c.fillText('energetic', W / 2, 52); c.fillText('quiet', W / 2, H - 30);
  c.save(); c.translate(40, H / 2); c.rotate(-Math.PI / 2); c.fillText('dark', 0, 0); c.restore();
  c.save(); c.translate(W - 40, H / 2); c.rotate(Math.PI / 2); c.fillText('bright', 0, 0); c.restore();
  if (!target) return;
  if (!shown) shown = {...target};
  shown.v += (target.v - shown.v) * 0.05; shown.a += (target.a - shown.a) * 0.05;   // glide, calm
  const x = W / 2 + Math.max(-1, Math.min(1, shown.v / 2)) * (W / 2 - 40);
  const y = H / 2 - Math.max(-1, Math.min(1, shown.a / 2)) * (H / 2 - 40);
  trail.push([x, y]); if (trail.length > 90) trail.shift();
  for (let i = 0; i < trail.length; i++) {
    c.fillStyle = 'rgba(255,179,71,' + (0.25 * i / trail.length) + ')';
    c.beginPath(); c.arc(trail[i][0], trail[i][1], 10, 0, 2 * Math.PI); c.fill();
  }
  c.fillStyle = DOT; c.beginPath(); c.arc(x, y, 26, 0, 2 * Math.PI); c.fill();
}
function drawRoll() {
  const W = roll.width, H = roll.height, c = rctx;
  c.fillStyle = '#0c0f12'; c.fillRect(0, 0, W, H);
  const since = (performance.now() - received) / 1000, lo = 21, hi = 108;
  const xOf = (age) => W - (age + since) / WINDOW_S * W, yOf = (p) => H - 8 - (p - lo) / (hi - lo) * (H - 16);
  for (const [on, off, pitch, vel] of notes) {
    const x0 = xOf(on), x1 = off === null ? W : xOf(off);
    if (x1 < 0) continue;
    c.fillStyle = 'hsla(' + (200 - vel) + ', 55%, ' + (45 + vel / 5) + '%, 0.9)';
    c.fillRect(x0, yOf(pitch) - 4, Math.max(3, x1 - x0), 8);
  }
}
let lastFrame = 0;
function frame(now) {
  drawPlane(); drawRoll();
  if (now - lastFrame > 1000) {
    lastFrame = now; const img = new Image();
    img.onload = () => { if (img.naturalWidth) document.getElementById('picture').src = img.src; };
    img.src = '/frame.jpg' + q('t=' + Date.now());
  }
  requestAnimationFrame(frame);
}
// The truth, kindly: a mood and a key only while the music plays; otherwise what is happening.
function say(main, second) {
  document.getElementById('mood').textContent = main || '\u00a0';
  document.getElementById('key').textContent = second || '\u00a0';
}
function resting(d) {
  target = null; shown = null; trail = [];
  document.getElementById('picture').style.opacity = 0.3;
  if (d.state === 'closed') say(d.opens_at ? 'closed until ' + d.opens_at : 'closed', '');
  else if (d.state === 'fatal') say('resting', 'a fault: staff have been told');
  else if (d.state === 'paused') say('resting', '');               // staff paused it (the console)
  else say('resting', 'the music returns in a moment');
}
listen((d) => {
  received = performance.now(); notes = d.notes || [];
  document.body.dataset.notes = notes.length;
  document.body.dataset.state = d.state;
  if (d.state === 'playing' && d.valence !== null && d.arousal !== null) {
    target = {v: d.valence, a: d.arousal};
    document.getElementById('picture').style.opacity = 1;
    say(mood(d.valence, d.arousal), d.key || '');
  } else resting(d);
});
setInterval(() => {     // no word from the kiosk for 3 s (stopped, or the network): nothing is known to play
  if (performance.now() - received > 3000) { notes = []; resting({state: 'unknown'}); }
}, 1000);
requestAnimationFrame(frame);
</script></body></html>
"""
