// Inline SVG charts, built with DOM calls (no innerHTML, no library).
const NS = 'http://www.w3.org/2000/svg';
export const COLORS = ['#3456d1', '#1f9d74', '#d99a1e', '#c0362c', '#7b4fc9', '#2b8fb3', '#8a6d3b', '#d45d9b', '#5d7a1f', '#667085'];

function el(name, attrs, parent) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (parent) parent.appendChild(e);
  return e;
}

function fmtUsd(v) {
  if (v === 0) return '$0';
  if (v < 0.01) return '$' + v.toPrecision(2);
  return '$' + v.toFixed(2);
}

/** Stacked bars: one bar per time bucket, one colour per series. */
export function stackedBars(container, { series, start, bucketSeconds }) {
  container.replaceChildren();
  const W = 900, H = 260, L = 84, B = 28, T = 10, R = 10;
  const n = series[0]?.usd.length ?? 0;
  const totals = Array.from({ length: n }, (_, i) => series.reduce((a, s) => a + s.usd[i], 0));
  const max = Math.max(...totals, 0);
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'spend over time' }, container);
  const y = (v) => T + (H - T - B) * (1 - (max ? v / max : 0));
  for (let g = 0; g <= 4; g++) {
    const v = (max * g) / 4;
    el('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: '#e4e7ec' }, svg);
    const t = el('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', 'font-size': 11, fill: '#667085' }, svg);
    t.textContent = fmtUsd(v);
  }
  if (!n || !max) {
    const t = el('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', fill: '#667085' }, svg);
    t.textContent = 'No spend in this window yet';
  }
  const bw = (W - L - R) / Math.max(n, 1);
  for (let i = 0; i < n; i++) {
    let acc = 0;
    series.forEach((s, k) => {
      const v = s.usd[i];
      if (!v) return;
      const r = el('rect', { x: L + i * bw + 1, y: y(acc + v), width: Math.max(1, bw - 2), height: y(acc) - y(acc + v), fill: COLORS[k % COLORS.length] }, svg);
      el('title', {}, r).textContent = `${s.name}: ${fmtUsd(v)}`;
      acc += v;
    });
    if (i % Math.ceil(n / 8) === 0) {
      const at = new Date(Date.parse(start) + i * bucketSeconds * 1000);
      const t = el('text', { x: L + i * bw + bw / 2, y: H - 8, 'text-anchor': 'middle', 'font-size': 11, fill: '#667085' }, svg);
      t.textContent = bucketSeconds >= 86400 ? at.toISOString().slice(5, 10) : at.toISOString().slice(11, 16);
    }
  }
  const legend = document.createElement('div');
  legend.className = 'legend';
  series.forEach((s, k) => {
    const item = document.createElement('span');
    const sw = document.createElement('i');
    sw.style.background = COLORS[k % COLORS.length];
    item.append(sw, `${s.name} ${fmtUsd(s.totalUsd)}`);
    legend.append(item);
  });
  container.append(legend);
}
