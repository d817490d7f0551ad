// The wgoptim playground's page. Every number drawn here comes from the server, which runs the
// library's own optimizers; this script only collects settings, sends them, and draws.
'use strict';

const $ = (sel, root = document) => root.querySelector(sel);
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2',
  '#17becf', '#bcbd22', '#7f7f7f', '#393b79', '#637939', '#ad494a', '#6b6ecf'];

// What the page last received and drew, for scripts and the browser tests.
const wg = window.wg = { catalog: null, last: {}, draws: { surface: 0, schedule: 0, finder: 0, train: 0, sweep: 0 }, errors: 0 };

// ---- requests and errors ----
async function api(method, path, body) {
  const init = { method };
  if (body !== undefined) {
    init.headers = { 'Content-Type': 'application/json' };
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  let data;
  try { data = await r.json(); } catch (_) { data = { error: `HTTP ${r.status}` }; }
  if (!r.ok) throw new Error(data.error || `HTTP ${r.status}`);
  return data;
}

function showError(message) {
  const e = $('#error');
  e.textContent = message;
  e.hidden = false;
  wg.errors += 1;
  wg.lastError = message;
}

function clearError() { $('#error').hidden = true; }

// Runs `task` after `ms` of quiet; a newer call replaces a pending one.
function debounce(task, ms) {
  let timer = null;
  return () => { clearTimeout(timer); timer = setTimeout(task, ms); };
}

// ---- parameter controls ----
const fmt = (v) => {
  if (!isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  return String(parseFloat(a < 1e-3 || a >= 1e4 ? v.toExponential(2) : v.toPrecision(3)));
};

// One argument row: a slider and a text field for numbers (the text is sent as typed, so the
// library checks it), a checkbox for booleans, a select for choices. `get()` gives the value.
function paramRow(p, value, onChange) {
  const row = document.createElement('div');
  row.className = 'param';
  row.dataset.key = p.key;
  const label = document.createElement('span');
  label.textContent = p.key;
  row.append(label);
  if (p.kind === 'bool') {
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.checked = !!value;
    box.addEventListener('change', onChange);
    row.append(box, document.createElement('span'));
    return { row, get: () => box.checked, set: (v) => { box.checked = !!v; } };
  }
  if (p.kind === 'choice') {
    const sel = document.createElement('select');
    for (const c of p.choices) sel.append(new Option(c, c));
    sel.value = value;
    sel.addEventListener('change', onChange);
    row.append(sel, document.createElement('span'));
    return { row, get: () => sel.value, set: (v) => { sel.value = v; } };
  }
  if (p.kind === 'text') {
    const t = document.createElement('input');
    t.type = 'text';
    t.value = value;
    t.addEventListener('change', onChange);
    row.append(document.createElement('span'), t);
    return { row, get: () => t.value, set: (v) => { t.value = v; } };
  }
  const [lo, hi] = p.range;
  const toPos = (v) => p.log ? (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) : (v - lo) / (hi - lo);
  const fromPos = (t) => p.log ? Math.pow(10, Math.log10(lo) + t * (Math.log10(hi) - Math.log10(lo))) : lo + t * (hi - lo);
  const slider = document.createElement('input');
  slider.type = 'range';
  slider.min = 0; slider.max = 1000; slider.step = 1;
  const text = document.createElement('input');
  text.type = 'text';
  const set = (v) => {
    text.value = typeof v === 'number' ? fmt(v) : String(v);
    const n = parseFloat(text.value);
    if (isFinite(n)) slider.value = Math.round(1000 * Math.min(1, Math.max(0, toPos(n))));
  };
  set(value);
  slider.addEventListener('input', () => { text.value = fmt(fromPos(slider.value / 1000)); onChange(); });
  text.addEventListener('change', () => { set(text.value.trim()); onChange(); });
  row.append(slider, text);
  return { row, get: () => text.value.trim(), set };
}

// An optimizer card: its class and arguments (PyTorch's names and defaults from the catalog).
function optimizerCard(preset, color, onChange, onRemove) {
  const kind = wg.catalog.optimizers.find((k) => k.name === preset.name);
  const card = document.createElement('div');
  card.className = 'card';
  card.style.setProperty('--color', color);
  card.dataset.label = preset.label;
  const head = document.createElement('header');
  const on = document.createElement('input');
  on.type = 'checkbox';
  on.checked = preset.enabled !== false;
  on.className = 'enabled';
  const title = document.createElement('span');
  title.textContent = preset.label;
  const cls = document.createElement('span');
  cls.className = 'kind';
  cls.textContent = `torch.optim.${kind.class}`;
  const remove = document.createElement('button');
  remove.type = 'button';
  remove.textContent = '×';
  remove.title = 'remove';
  head.append(on, title, cls, remove);
  const body = document.createElement('div');
  body.className = 'params';
  const rows = [];
  for (const p of kind.params) {
    const v = preset.params[p.key] !== undefined ? preset.params[p.key] : p.default;
    if (p.kind === 'pair') {
      for (const k of [0, 1]) {
        const r = paramRow({ ...p, key: `${p.key}[${k}]`, kind: 'number' }, v[k], onChange);
        rows.push({ key: p.key, index: k, ...r });
        body.append(r.row);
      }
    } else {
      const r = paramRow(p, v, onChange);
      rows.push({ key: p.key, ...r });
      body.append(r.row);
    }
  }
  card.append(head, body);
  const sync = () => card.classList.toggle('off', !on.checked);
  on.addEventListener('change', () => { sync(); onChange(); });
  remove.addEventListener('click', () => { card.remove(); onRemove(); });
  sync();
  return {
    el: card,
    color,
    label: preset.label,
    enabled: () => on.checked && card.isConnected,
    setParam: (key, v) => { const r = rows.find((x) => x.key === key); if (r) r.set(v); },
    spec: () => {
      const params = {};
      for (const r of rows) {
        if (r.index !== undefined) {
          params[r.key] = params[r.key] || [];
          params[r.key][r.index] = r.get();
        } else {
          params[r.key] = r.get();
        }
      }
      for (const k of ['betas', 'etas', 'step_sizes']) if (params[k]) params[k] = params[k].join(',');
      if (params.state_dtype && params.state_dtype !== 'f32') {
        // Small tensors keep f32 state by default (bitsandbytes' 4096): the playground's are small.
        params.state_min_len = 0;
      }
      return { label: preset.label, name: preset.name, params };
    },
  };
}

// A list of optimizer cards with an "add" menu of presets.
function optimizerList(container, addSelect, presets, enabled, onChange) {
  const cards = [];
  let next = 0;
  const add = (preset) => {
    const color = COLORS[next++ % COLORS.length];
    const card = optimizerCard(preset, color, onChange, () => {
      cards.splice(cards.indexOf(card), 1);
      onChange();
    });
    cards.push(card);
    container.append(card.el);
  };
  presets.forEach((p) => add({ ...p, enabled: enabled(p) }));
  addSelect.append(new Option('a preset…', ''));
  presets.forEach((p, i) => addSelect.append(new Option(p.label, i)));
  addSelect.addEventListener('change', () => {
    if (addSelect.value === '') return;
    const p = presets[+addSelect.value];
    add({ ...p, label: `${p.label} (${cards.length + 1})` });
    addSelect.value = '';
    onChange();
  });
  return {
    cards,
    active: () => cards.filter((c) => c.enabled()),
  };
}

// ---- drawing ----
const MARGIN = { left: 74, right: 14, top: 26, bottom: 38 };

function ticks(lo, hi, log) {
  if (log) {
    const out = [];
    for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) if (e >= lo - 1e-9 && e <= hi + 1e-9) out.push(e);
    return out;
  }
  const span = hi - lo || 1;
  const step = Math.pow(10, Math.floor(Math.log10(span / 5)));
  const k = span / step > 20 ? 5 : span / step > 10 ? 2 : 1;
  const out = [];
  for (let v = Math.ceil(lo / (k * step)) * k * step; v <= hi + 1e-12; v += k * step) out.push(v);
  return out;
}

// A line chart: `series` of {name, color, points: [[x, y]]}; log axes drop values ≤ 0 (and
// every non-finite value); `marks` are vertical lines with a label.
function lineChart(canvas, { title, series, xLabel, yLabel, logX = false, logY = false, marks = [], legendLow = false }) {
  const ctx = canvas.getContext('2d');
  const W = canvas.width, H = canvas.height;
  ctx.clearRect(0, 0, W, H);
  const tx = (v) => logX ? Math.log10(v) : v;
  const ty = (v) => logY ? Math.log10(v) : v;
  const ok = (x, y) => x !== null && y !== null && isFinite(x) && isFinite(y) && (!logX || x > 0) && (!logY || y > 0);
  const pts = series.map((s) => s.points.filter(([x, y]) => ok(x, y)).map(([x, y]) => [tx(x), ty(y)]));
  const all = pts.flat();
  ctx.fillStyle = '#1d2330';
  ctx.font = '13px system-ui, sans-serif';
  ctx.fillText(title, MARGIN.left, 17);
  if (!all.length) return;
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (x1 === x0) { x0 -= 0.5; x1 += 0.5; }
  if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
  const pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad;
  const px = (x) => MARGIN.left + (x - x0) / (x1 - x0) * (W - MARGIN.left - MARGIN.right);
  const py = (y) => H - MARGIN.bottom - (y - y0) / (y1 - y0) * (H - MARGIN.top - MARGIN.bottom);
  ctx.strokeStyle = '#c8cdda'; ctx.lineWidth = 1;
  ctx.strokeRect(MARGIN.left, MARGIN.top, W - MARGIN.left - MARGIN.right, H - MARGIN.top - MARGIN.bottom);
  ctx.fillStyle = '#4a5570'; ctx.font = '11px system-ui, sans-serif';
  for (const t of ticks(x0, x1, logX)) {
    ctx.fillText(logX ? `1e${t}` : fmt(t), px(t) - 10, H - MARGIN.bottom + 14);
  }
  ctx.textAlign = 'right';
  for (const t of ticks(y0, y1, logY)) {
    ctx.fillText(logY ? `1e${t}` : fmt(t), MARGIN.left - 5, py(t) + 4);
    ctx.beginPath(); ctx.moveTo(MARGIN.left, py(t)); ctx.lineTo(W - MARGIN.right, py(t));
    ctx.strokeStyle = '#eef0f5'; ctx.stroke();
  }
  ctx.textAlign = 'left';
  ctx.fillText(xLabel, W / 2 - 30, H - 6);
  ctx.save(); ctx.translate(12, H / 2 + 40); ctx.rotate(-Math.PI / 2); ctx.fillText(yLabel, 0, 0); ctx.restore();
  series.forEach((s, k) => {
    ctx.strokeStyle = s.color; ctx.lineWidth = s.width || 1.6;
    ctx.beginPath();
    pts[k].forEach(([x, y], i) => (i ? ctx.lineTo(px(x), py(y)) : ctx.moveTo(px(x), py(y))));
    ctx.stroke();
  });
  for (const m of marks) {
    const x = px(tx(m.x));
    ctx.strokeStyle = '#d04040'; ctx.setLineDash([4, 3]);
    ctx.beginPath(); ctx.moveTo(x, MARGIN.top); ctx.lineTo(x, H - MARGIN.bottom); ctx.stroke();
    ctx.setLineDash([]); ctx.fillStyle = '#d04040'; ctx.fillText(m.label, x + 4, MARGIN.top + 12);
  }
  let ly = legendLow ? H - MARGIN.bottom - 8 - 14 * series.length : MARGIN.top + 6;
  ctx.font = '11px system-ui, sans-serif';
  for (const s of series) {
    const w = ctx.measureText(s.name).width;
    const lx = W - MARGIN.right - w - 28;
    ctx.fillStyle = 'rgba(255,255,255,0.85)'; ctx.fillRect(lx - 4, ly - 2, w + 30, 14);
    ctx.fillStyle = s.color; ctx.fillRect(lx, ly + 4, 18, 3);
    ctx.fillStyle = '#1d2330'; ctx.fillText(s.name, lx + 22, ly + 9);
    ly += 14;
  }
}

// The contour plot: the surface shaded by log(1 + f − min) in bands, iso-lines by marching
// squares over the server's grid, the optimum, the start and the paths.
function contourFrame(info) {
  const W = 640, H = 520, m = { left: 46, right: 12, top: 12, bottom: 32 };
  const [[x0, x1], [y0, y1]] = info.window;
  const toPx = (x, y) => [m.left + (x - x0) / (x1 - x0) * (W - m.left - m.right), H - m.bottom - (y - y0) / (y1 - y0) * (H - m.top - m.bottom)];
  const fromPx = (px, py) => [x0 + (px - m.left) / (W - m.left - m.right) * (x1 - x0), y0 + (H - m.bottom - py) / (H - m.top - m.bottom) * (y1 - y0)];
  const min = Math.min(...info.values);
  const shade = info.values.map((v) => Math.log(1 + v - min));
  const top = Math.max(...shade);
  const levels = Array.from({ length: 14 }, (_, k) => top * (k + 1) / 15);
  const bg = document.createElement('canvas');
  bg.width = W; bg.height = H;
  const g = bg.getContext('2d');
  g.fillStyle = '#fff'; g.fillRect(0, 0, W, H);
  const img = g.createImageData(info.nx, info.ny);
  for (let j = 0; j < info.ny; j++) {
    for (let i = 0; i < info.nx; i++) {
      const t = Math.floor(shade[j * info.nx + i] / top * 15) / 15;
      const o = ((info.ny - 1 - j) * info.nx + i) * 4;
      img.data[o] = 235 - 70 * t; img.data[o + 1] = 242 - 100 * t; img.data[o + 2] = 255 - 45 * t; img.data[o + 3] = 255;
    }
  }
  const tile = document.createElement('canvas');
  tile.width = info.nx; tile.height = info.ny;
  tile.getContext('2d').putImageData(img, 0, 0);
  const [ax, ay] = toPx(x0, y1), [bx, by] = toPx(x1, y0);
  g.drawImage(tile, ax, ay, bx - ax, by - ay);
  // Marching squares on cell centres.
  const dx = (x1 - x0) / info.nx, dy = (y1 - y0) / info.ny;
  const at = (i, j) => shade[j * info.nx + i];
  const cx = (i) => x0 + (i + 0.5) * dx, cy = (j) => y0 + (j + 0.5) * dy;
  g.strokeStyle = 'rgba(90,100,150,0.7)'; g.lineWidth = 0.8;
  g.beginPath();
  for (const lv of levels) {
    for (let j = 0; j + 1 < info.ny; j++) {
      for (let i = 0; i + 1 < info.nx; i++) {
        const c = [at(i, j), at(i + 1, j), at(i + 1, j + 1), at(i, j + 1)];
        const corner = [[cx(i), cy(j)], [cx(i + 1), cy(j)], [cx(i + 1), cy(j + 1)], [cx(i), cy(j + 1)]];
        const cross = [];
        for (let e = 0; e < 4; e++) {
          const a = c[e], b = c[(e + 1) % 4];
          if ((a < lv) !== (b < lv)) {
            const t = (lv - a) / (b - a);
            const p = corner[e], q = corner[(e + 1) % 4];
            cross.push([p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])]);
          }
        }
        for (let k = 0; k + 1 < cross.length; k += 2) {
          const [p1x, p1y] = toPx(...cross[k]), [p2x, p2y] = toPx(...cross[k + 1]);
          g.moveTo(p1x, p1y); g.lineTo(p2x, p2y);
        }
      }
    }
  }
  g.stroke();
  g.fillStyle = '#4a5570'; g.font = '11px system-ui, sans-serif';
  for (const t of ticks(x0, x1, false)) { const [px] = toPx(t, y0); g.fillText(fmt(t), px - 8, H - m.bottom + 14); }
  for (const t of ticks(y0, y1, false)) { const [, py] = toPx(x0, t); g.fillText(fmt(t), 6, py + 4); }
  g.fillText('x', W / 2, H - 6); g.fillText('y', 6, 14);
  return { bg, toPx, fromPx, W, H };
}

function drawContour(canvas, frame, info, start, paths, shown) {
  const ctx = canvas.getContext('2d');
  ctx.drawImage(frame.bg, 0, 0);
  const [ox, oy] = frame.toPx(...info.optimum);
  ctx.strokeStyle = '#d62728'; ctx.lineWidth = 3;
  ctx.beginPath(); ctx.moveTo(ox - 7, oy - 7); ctx.lineTo(ox + 7, oy + 7); ctx.moveTo(ox + 7, oy - 7); ctx.lineTo(ox - 7, oy + 7); ctx.stroke();
  ctx.save();
  ctx.beginPath(); ctx.rect(46, 12, 640 - 58, 520 - 44); ctx.clip();
  for (const p of paths) {
    ctx.strokeStyle = p.color; ctx.lineWidth = 2;
    ctx.beginPath();
    const n = Math.min(p.points.length, shown);
    for (let i = 0; i < n; i++) {
      const [px, py] = frame.toPx(...p.points[i]);
      i ? ctx.lineTo(px, py) : ctx.moveTo(px, py);
    }
    ctx.stroke();
    if (n > 0) {
      const [px, py] = frame.toPx(...p.points[n - 1]);
      ctx.fillStyle = p.color; ctx.beginPath(); ctx.arc(px, py, 3.5, 0, 2 * Math.PI); ctx.fill();
    }
  }
  ctx.restore();
  const [sx, sy] = frame.toPx(...start);
  ctx.fillStyle = '#000'; ctx.beginPath(); ctx.arc(sx, sy, 6, 0, 2 * Math.PI); ctx.fill();
  let ly = 20;
  ctx.font = '12px system-ui, sans-serif';
  for (const p of paths) {
    const w = ctx.measureText(p.label).width;
    ctx.fillStyle = 'rgba(255,255,255,0.85)'; ctx.fillRect(640 - w - 52, ly - 10, w + 40, 15);
    ctx.fillStyle = p.color; ctx.fillRect(640 - w - 46, ly - 4, 18, 3);
    ctx.fillStyle = '#1d2330'; ctx.fillText(p.label, 640 - w - 24, ly + 1);
    ly += 15;
  }
}

// ---- schedule controls (shared by the surfaces and the schedules tab) ----
function scheduleControls(fieldset, withNone, onChange) {
  const sel = document.createElement('select');
  const list = wg.catalog.schedules.filter((s) => withNone || s.name !== 'constant');
  for (const s of list) sel.append(new Option(s.name === 'constant' ? 'none (constant lr)' : s.name, s.name));
  if (!withNone) sel.value = 'OneCycleLR';
  const box = document.createElement('div');
  box.className = 'schedule-params';
  fieldset.append(sel, box);
  let rows = [];
  const build = () => {
    box.replaceChildren();
    const s = list.find((x) => x.name === sel.value);
    rows = s.params.map((p) => { const r = paramRow(p, p.default, onChange); box.append(r.row); return { key: p.key, ...r }; });
  };
  build();
  sel.addEventListener('change', () => { build(); onChange(); });
  return {
    select: sel,
    spec: () => {
      const params = {};
      for (const r of rows) {
        const v = r.get();
        if (r.key === 'warmup_steps' && (v === '0' || v === 0)) continue;
        params[r.key] = v;
      }
      return { name: sel.value, params };
    },
  };
}

// ---- surfaces tab ----
const surfaces = { infos: {}, seq: 0, anim: null };

async function surfaceInfo(name) {
  if (!surfaces.infos[name]) {
    const info = await api('GET', `/api/surfaces/${name}`);
    surfaces.infos[name] = { info, frame: contourFrame(info) };
  }
  return surfaces.infos[name];
}

async function selectSurface(name) {
  const { info } = await surfaceInfo(name);
  $('#formula').textContent = info.formula;
  $('#surface-steps').value = info.steps;
  surfaces.start = info.start.slice();
  for (const c of surfaces.list.cards) {
    const base = c.label.replace(/ \(\d+\)$/, '');
    if (info.lrs[base] !== undefined) c.setParam('lr', info.lrs[base]);
  }
}

function showStart() {
  $('#start-point').textContent = `(${fmt(surfaces.start[0])}, ${fmt(surfaces.start[1])})`;
}

async function runSurface() {
  const seq = ++surfaces.seq;
  const name = $('#surface').value;
  const cards = surfaces.list.active();
  const schedule = surfaces.schedule.spec();
  const request = {
    surface: name,
    start: surfaces.start,
    steps: +$('#surface-steps').value,
    optimizers: cards.map((c) => c.spec()),
    schedule: schedule.name === 'constant' ? null : schedule,
  };
  showStart();
  const t0 = performance.now();
  let response;
  try {
    response = await api('POST', '/api/surface', request);
  } catch (e) {
    if (seq === surfaces.seq) showError(e.message);
    return;
  }
  if (seq !== surfaces.seq) return; // a newer request is on its way
  clearError();
  const { info, frame } = await surfaceInfo(name);
  wg.last.surfaceRequest = request;
  wg.last.surface = response;
  const paths = response.paths.map((p, k) => ({ ...p, color: cards[k].color }));
  const longest = Math.max(1, ...paths.map((p) => p.points.length));
  lineChart($('#surface-loss'), {
    title: `f along each path (${info.formula})`,
    series: paths.map((p) => ({ name: p.label, color: p.color, points: p.loss.map((v, i) => [i, v]) })),
    xLabel: 'step', yLabel: 'f(x, y)', logY: paths.every((p) => p.loss.every((v) => v > 0)),
  });
  $('#surface-timing').textContent = `${paths.length} optimizers × ${request.steps} steps on ${wg.catalog.device}: ${Math.round(performance.now() - t0)} ms round trip`;
  cancelAnimationFrame(surfaces.anim);
  const began = performance.now();
  const frameAt = () => {
    const shown = Math.ceil(longest * Math.min(1, (performance.now() - began) / 900));
    drawContour($('#contour'), frame, info, response.start, paths, shown);
    if (shown < longest) surfaces.anim = requestAnimationFrame(frameAt);
  };
  frameAt();
  wg.draws.surface += 1;
}

async function initSurfaces() {
  const sel = $('#surface');
  for (const s of wg.catalog.surfaces) sel.append(new Option(s.name, s.name));
  sel.value = 'rosenbrock';
  const rerun = debounce(runSurface, 120);
  surfaces.list = optimizerList($('#surface-optimizers'), $('#surface-add'), wg.catalog.presets, () => true, rerun);
  surfaces.schedule = scheduleControls($('#surface-schedule'), true, rerun);
  await selectSurface(sel.value);
  sel.addEventListener('change', async () => { await selectSurface(sel.value); rerun(); });
  $('#surface-steps').addEventListener('change', rerun);
  $('#start-reset').addEventListener('click', () => { surfaces.start = surfaces.infos[sel.value].info.start.slice(); rerun(); });
  $('#contour').addEventListener('click', (ev) => {
    const canvas = $('#contour');
    const r = canvas.getBoundingClientRect();
    const px = (ev.clientX - r.left) * canvas.width / r.width;
    const py = (ev.clientY - r.top) * canvas.height / r.height;
    surfaces.start = surfaces.infos[sel.value].frame.fromPx(px, py);
    showStart();
    rerun();
  });
  await runSurface();
}

// ---- schedules tab ----
const schedules = { seq: 0 };

async function runSchedule() {
  const seq = ++schedules.seq;
  const spec = schedules.controls.spec();
  spec.params.lr = $('#schedule-lr').value.trim();
  const request = { schedule: spec, steps: +$('#schedule-steps').value };
  let r;
  try { r = await api('POST', '/api/schedule', request); } catch (e) { if (seq === schedules.seq) showError(e.message); return; }
  if (seq !== schedules.seq) return;
  clearError();
  wg.last.scheduleRequest = request;
  wg.last.schedule = r;
  const plateau = !!r.metric;
  lineChart($('#schedule-lr-plot'), {
    title: plateau ? `${spec.name}: lr per epoch` : `${spec.name}: lr of each step, as the kernel's uniform carries it`,
    series: [{ name: 'lr', color: COLORS[0], points: r.lr.map((v, i) => [i, v]) }],
    xLabel: plateau ? 'epoch' : 'step', yLabel: 'learning rate',
  });
  const second = $('#schedule-momentum-plot');
  if (r.momentum || r.metric) {
    second.hidden = false;
    lineChart(second, r.momentum
      ? { title: 'cycled momentum (SGD μ, Adam β₁)', series: [{ name: 'momentum', color: COLORS[1], points: r.momentum.map((v, i) => [i, v]) }], xLabel: 'step', yLabel: 'momentum' }
      : { title: 'the metric fed to the scheduler (a loss that stalls)', series: [{ name: 'metric', color: COLORS[2], points: r.metric.map((v, i) => [i, v]) }], xLabel: 'epoch', yLabel: 'metric' });
  } else {
    second.hidden = true;
  }
  wg.draws.schedule += 1;
}

async function runFinder() {
  const preset = wg.catalog.training_presets[+$('#finder-optimizer').value];
  const request = {
    model: 'mlp', hidden: 32, dataset: 'digits',
    optimizer: { label: preset.label, name: preset.name, params: { ...preset.params, lr: 1e-3 } },
    start_lr: $('#finder-start').value.trim(), end_lr: $('#finder-end').value.trim(),
    num_iter: +$('#finder-iters').value, batch: 64,
  };
  const numbers = ['start_lr', 'end_lr'];
  for (const k of numbers) {
    const v = Number(request[k]);
    if (request[k] === '' || Number.isNaN(v)) { showError(`${k} = "${request[k]}" is not a number`); return; }
    request[k] = v;
  }
  $('#finder-run').disabled = true;
  try {
    const r = await api('POST', '/api/lr-finder', request);
    clearError();
    wg.last.finder = r;
    lineChart($('#finder-plot'), {
      title: `LR finder: MLP on the UCI digits, ${preset.label}, minibatches of 64`,
      series: [
        { name: 'loss', color: '#9aa6c4', points: r.points.map((p) => [p.lr, p.loss]), width: 1 },
        { name: 'smoothed', color: COLORS[0], points: r.points.map((p) => [p.lr, p.smoothed]) },
      ],
      xLabel: 'learning rate (log scale)', yLabel: 'training loss', logX: true,
      marks: r.suggestion ? [{ x: r.suggestion, label: `suggested ${fmt(r.suggestion)}` }] : [],
    });
    $('#finder-suggestion').textContent = r.suggestion ? `suggested learning rate: ${fmt(r.suggestion)} (steepest descent of the smoothed loss)` : 'no suggestion';
    wg.draws.finder += 1;
  } catch (e) {
    showError(e.message);
  } finally {
    $('#finder-run').disabled = false;
  }
}

function initSchedules() {
  const rerun = debounce(runSchedule, 120);
  schedules.controls = scheduleControls($('#schedule-controls'), false, rerun);
  $('#schedule-lr').addEventListener('change', rerun);
  $('#schedule-steps').addEventListener('change', rerun);
  const sel = $('#finder-optimizer');
  wg.catalog.training_presets.forEach((p, i) => sel.append(new Option(p.label, i)));
  sel.value = wg.catalog.training_presets.findIndex((p) => p.label === 'Adam');
  $('#finder-run').addEventListener('click', runFinder);
  runSchedule();
}

// ---- training tab ----
const training = { job: null, sweepJob: null };

function modelRequest() {
  return { model: $('#train-model').value, hidden: +$('#train-hidden').value, dataset: $('#train-dataset').value };
}

async function startJob(path, request, slot) {
  if (training[slot] !== null) api('DELETE', `/api/jobs/${training[slot]}`).catch(() => {});
  const { id } = await api('POST', path, request);
  training[slot] = id;
  return id;
}

// Polls a job until it is done, handing each answer to `update`.
async function follow(id, slot, update) {
  let from = 0;
  for (;;) {
    const r = await api('GET', `/api/jobs/${id}?from=${from}`);
    if (training[slot] !== id) return;
    update(r);
    from += r.loss.length ? r.loss[0].length : 0;
    if (r.done) { if (r.error && r.error !== 'cancelled') showError(r.error); return; }
    await new Promise((res) => setTimeout(res, 150));
  }
}

async function runTraining() {
  const cards = training.list.active();
  const threshold = $('#train-threshold').value.trim();
  const request = { ...modelRequest(), optimizers: cards.map((c) => c.spec()), steps: +$('#train-steps').value, threshold: Number(threshold) };
  if (threshold === '' || Number.isNaN(request.threshold)) { showError(`loss threshold "${threshold}" is not a number`); return; }
  let id;
  try { id = await startJob('/api/train', request, 'job'); } catch (e) { showError(e.message); return; }
  clearError();
  $('#table-threshold').textContent = threshold;
  const state = { id, request, labels: [], loss: [], accuracy: [], table: null, done: false };
  wg.last.train = state;
  $('#train-table tbody').replaceChildren();
  await follow(id, 'job', (r) => {
    state.labels = r.labels;
    r.loss.forEach((l, k) => { state.loss[k] = (state.loss[k] || []).concat(l); });
    r.accuracy.forEach((a, k) => { state.accuracy[k] = (state.accuracy[k] || []).concat(a); });
    state.done = r.done;
    const series = (data) => state.labels.map((name, k) => ({ name, color: cards[k].color, points: (data[k] || []).map((v, i) => [i, v]) }));
    const title = `${request.model === 'mlp' ? `MLP (${request.hidden} tanh units)` : 'logistic regression'} on ${request.dataset}`;
    lineChart($('#train-loss'), { title: `${title}: training loss`, series: series(state.loss), xLabel: 'step', yLabel: 'cross-entropy', logY: true });
    lineChart($('#train-accuracy'), { title: `${title}: test accuracy`, series: series(state.accuracy), xLabel: 'step', yLabel: 'accuracy', legendLow: true });
    if (r.table) {
      state.table = r.table;
      const body = $('#train-table tbody');
      body.replaceChildren(...r.table.map((row) => {
        const tr = document.createElement('tr');
        const cells = [row.label, row.steps_to_threshold === null ? `> ${request.steps}` : row.steps_to_threshold,
          row.final_loss === null ? 'diverged' : row.final_loss.toFixed(4), row.final_accuracy === null ? '' : `${(100 * row.final_accuracy).toFixed(1)}%`];
        for (const c of cells) { const td = document.createElement('td'); td.textContent = c; tr.append(td); }
        return tr;
      }));
    }
    wg.draws.train += 1;
  });
}

async function runSweep() {
  const cards = training.list.active();
  const request = {
    ...modelRequest(), optimizers: cards.map((c) => c.spec()),
    lr_min: Number($('#sweep-min').value), lr_max: Number($('#sweep-max').value),
    count: +$('#sweep-count').value, steps: +$('#sweep-steps').value,
  };
  for (const k of ['lr_min', 'lr_max']) if (Number.isNaN(request[k])) { showError(`${k} is not a number`); return; }
  let id;
  try { id = await startJob('/api/sweep', request, 'sweepJob'); } catch (e) { showError(e.message); return; }
  clearError();
  await follow(id, 'sweepJob', (r) => {
    wg.last.sweep = r;
    const series = (f) => r.sweeps.map((s, k) => ({ name: s.label, color: cards[k].color, points: s.points.map((p) => [p.lr, f(p)]) }));
    lineChart($('#sweep-loss'), { title: `final training loss after ${request.steps} steps`, series: series((p) => p.loss), xLabel: 'learning rate (log scale)', yLabel: 'loss', logX: true, logY: true });
    lineChart($('#sweep-accuracy'), { title: 'final test accuracy', series: series((p) => p.accuracy), xLabel: 'learning rate (log scale)', yLabel: 'accuracy', logX: true, legendLow: true });
    wg.draws.sweep += 1;
  });
}

function initTraining() {
  const enabled = (p) => !/int8|bf16|Nesterov/.test(p.label) || p.label === 'AdamW int8';
  training.list = optimizerList($('#train-optimizers'), $('#train-add'), wg.catalog.training_presets, enabled, () => {});
  $('#train-run').addEventListener('click', runTraining);
  $('#sweep-run').addEventListener('click', runSweep);
}

// ---- tabs and start ----
const started = {};
function showTab(name) {
  for (const b of document.querySelectorAll('nav button')) b.setAttribute('aria-selected', String(b.dataset.tab === name));
  for (const s of document.querySelectorAll('.tab')) s.hidden = s.id !== `tab-${name}`;
  if (!started[name]) {
    started[name] = true;
    if (name === 'schedules') { initSchedules(); runFinder(); }
    if (name === 'training') { initTraining(); runTraining(); }
  }
}

async function main() {
  try {
    wg.catalog = await api('GET', '/api/catalog');
  } catch (e) {
    showError(`cannot reach the server: ${e.message}`);
    return;
  }
  $('#device').textContent = `optimizers run on ${wg.catalog.device}`;
  for (const b of document.querySelectorAll('nav button')) b.addEventListener('click', () => showTab(b.dataset.tab));
  started.surfaces = true;
  await initSurfaces();
  wg.ready = true;
}

main();
