// Tokens issued per day as an inline SVG bar chart, built with DOM calls (no library, no
// inline style: sizes are SVG attributes, colours come from console.css).

const SVG = 'http://www.w3.org/2000/svg';

/** @param {string} tag @param {Record<string, string | number>} attrs @param {string} [text] */
function s(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** A round upper bound for the axis: 1, 2, 5 × 10^n. @param {number} max */
function niceCeiling(max) {
  if (max <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(max));
  return [1, 2, 5, 10].map((m) => m * magnitude).find((v) => v >= max) ?? 10 * magnitude;
}

/**
 * @param {{ day: string, tokens: number }[]} days oldest first
 * @returns {SVGSVGElement}
 */
export function tokensPerDayChart(days) {
  const width = 720;
  const height = 220;
  const pad = { top: 12, right: 12, bottom: 28, left: 44 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const top = niceCeiling(Math.max(0, ...days.map((d) => d.tokens)));
  const total = days.reduce((sum, d) => sum + d.tokens, 0);
  const svg = /** @type {SVGSVGElement} */ (
    s('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-labelledby': 'chart-title', preserveAspectRatio: 'xMidYMid meet' })
  );
  svg.append(s('title', { id: 'chart-title' }, `Tokens issued per UTC day, last ${days.length} days: ${total} in all`));
  for (const fraction of [0, 0.5, 1]) {
    const y = pad.top + plotH * (1 - fraction);
    svg.append(s('line', { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: 'chart-grid' }));
    svg.append(s('text', { x: pad.left - 6, y: y + 4, class: 'chart-axis', 'text-anchor': 'end' }, String(Math.round(top * fraction))));
  }
  const slot = plotW / Math.max(days.length, 1);
  days.forEach((d, i) => {
    const barH = top ? (d.tokens / top) * plotH : 0;
    const x = pad.left + i * slot + slot * 0.15;
    const bar = s('rect', { x, y: pad.top + plotH - barH, width: slot * 0.7, height: Math.max(barH, d.tokens ? 1 : 0), rx: 2, class: 'chart-bar' });
    // Each bar tells its day and count on hover and to assistive technology.
    bar.append(s('title', {}, `${d.day}: ${d.tokens} token${d.tokens === 1 ? '' : 's'}`));
    svg.append(bar);
    if (i % 7 === days.length % 7 || i === days.length - 1) {
      svg.append(s('text', { x: x + slot * 0.35, y: height - 8, class: 'chart-axis', 'text-anchor': 'middle' }, d.day.slice(5)));
    }
  });
  return svg;
}
