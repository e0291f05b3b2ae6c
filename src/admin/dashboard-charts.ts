/**
 * The dashboard script's sparklines (requests/s and p99 of the last minute), pasted into its
 * function scope by dashboard-script.ts, which defines SAMPLES, W and H. Same rules: no
 * backticks or dollar-brace sequences, since this text lives inside a template literal.
 */
export const dashboardCharts = String.raw`  function makeChart(parent, kind, label) {
    var box = el('div', 'chart ' + kind), k = el('div', 'k'), max = el('span', '', '');
    k.append(el('span', '', label), max);
    var chart = { svg: svg('svg', { viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', 'data-chart': kind }),
      area: svg('path', {}), line: svg('polyline', {}), max: max, samples: [] };
    chart.svg.append(svg('line', { x1: 0, x2: W, y1: H - 1, y2: H - 1 }), chart.area, chart.line);
    box.append(k, chart.svg);
    parent.append(box);
    return chart;
  }

  function draw(chart, value, floor, format) {
    var s = chart.samples;
    s.push(value);
    if (s.length > SAMPLES) s.shift();
    // Newest sample at the right edge (inset 1 so the stroke is not clipped), oldest to its left.
    var max = floor, right = W - 1, step = (W - 2) / (SAMPLES - 1), pts = [];
    for (var i = 0; i < s.length; i++) if (s[i] > max) max = s[i];
    for (var j = 0; j < s.length; j++) {
      pts.push((right - (s.length - 1 - j) * step).toFixed(1) + ',' + (H - 1 - (s[j] / max) * (H - 5)).toFixed(1));
    }
    chart.line.setAttribute('points', pts.join(' '));
    var first = (right - (s.length - 1) * step).toFixed(1);
    chart.area.setAttribute('d', 'M' + first + ',' + (H - 1) + ' L' + pts.join(' L') + ' L' + right + ',' + (H - 1) + ' Z');
    chart.svg.setAttribute('data-last', String(value));
    setText(chart.max, 'max ' + format(max));
  }`;
