"""The page's style sheet and script, inlined (no server, no network, no CDN).

The script is a few lines of plain JavaScript: a filter box over the outputs
table (every word must occur in a row) and sorting by any column (numbers by
their ``data-v`` value, text otherwise).
"""

from __future__ import annotations

CSS = """
:root { --fg: #1b1f24; --muted: #5c6670; --line: #d8dde3; --bad: #b3261e; --ok: #1e7d32;
        --warn: #9a6700; --bg2: #f5f7f9; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
       margin: 0 auto; padding: 16px 24px 64px; max-width: 1500px; }
h1 { font-size: 22px; margin: 4px 0 2px; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 0 0 4px; }
a { color: #0b57d0; text-decoration: none; } a:hover { text-decoration: underline; }
.muted, .facts { color: var(--muted); }
.counts { display: flex; flex-wrap: wrap; gap: 8px; margin: 8px 0; }
.counts div { background: var(--bg2); border: 1px solid var(--line); border-radius: 6px;
              padding: 6px 12px; } .counts b { font-size: 18px; display: block; }
.ledger { padding: 8px 12px; border-radius: 6px; border: 1px solid var(--line); }
.ledger.ok { border-color: var(--ok); } .ledger.bad { border-color: var(--bad); }
.ok { color: var(--ok); } .bad { color: var(--bad); } .warn { color: var(--warn); }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 6px; text-align: left;
         vertical-align: top; }
#outputs-table th { cursor: pointer; user-select: none; position: sticky; top: 0;
                    background: #fff; white-space: nowrap; }
#outputs-table th[data-dir="asc"]::after { content: " \\25B2"; }
#outputs-table th[data-dir="desc"]::after { content: " \\25BC"; }
#outputs-table td.num { text-align: right; font-variant-numeric: tabular-nums; }
#outputs-table td.nw { white-space: nowrap; }
#filter { font: inherit; padding: 4px 8px; width: 320px; margin: 4px 8px 8px 0; }
details { margin: 4px 0; } summary { cursor: pointer; }
.vol { border-top: 1px solid var(--line); padding: 12px 0; content-visibility: auto;
       contain-intrinsic-size: auto 520px; }
.vol:target { background: #fffbe6; }
.row { display: flex; flex-wrap: wrap; align-items: flex-end; gap: 10px; margin: 6px 0; }
.rowlabel { width: 100%; font-size: 12px; color: var(--muted); }
figure { margin: 0; }
figure.view figcaption { font-size: 11px; color: var(--muted); text-align: center; }
.frame { position: relative; background: #000; }
.frame img { display: block; image-rendering: pixelated; }
.frame img.overlay { position: absolute; left: 0; top: 0; }
.lt { position: absolute; color: #ffd54f; font: bold 12px/1 monospace;
      text-shadow: 0 0 2px #000, 0 0 2px #000; pointer-events: none; }
.lt.l { left: 3px; top: 50%; transform: translateY(-50%); }
.lt.r { right: 3px; top: 50%; transform: translateY(-50%); }
.lt.t { top: 3px; left: 50%; transform: translateX(-50%); }
.lt.b { bottom: 3px; left: 50%; transform: translateX(-50%); }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; }
.swatch { display: inline-block; width: 12px; height: 12px; border: 1px solid #0004;
          vertical-align: -2px; margin-right: 4px; }
figure.plot { margin: 8px 0; } figure.plot figcaption { font-size: 12px; color: var(--muted); }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
svg .box { fill: none; stroke: #999; } svg .tick { stroke: #999; }
svg .gap { fill: #d6272822; stroke: none; } svg .gaptext { fill: #b3261e; }
svg .dup { fill: none; stroke: #ff7f0e; stroke-width: 1.5; } svg .duptext { fill: #c25e00; }
svg .rail line { stroke-width: 1; }
ul.warnings { margin: 4px 0; padding-left: 20px; color: var(--warn); }
"""

JS = """
(function () {
  var table = document.getElementById('outputs-table');
  if (!table) { return; }
  var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
  var box = document.getElementById('filter'), shown = document.getElementById('shown');
  rows.forEach(function (r) { r.qcText = r.textContent.toLowerCase(); });
  function filter() {
    var words = box.value.toLowerCase().split(/\\s+/).filter(Boolean), n = 0;
    rows.forEach(function (r) {
      var ok = words.every(function (w) { return r.qcText.indexOf(w) >= 0; });
      r.hidden = !ok; if (ok) { n += 1; }
    });
    shown.textContent = String(n);
  }
  box.addEventListener('input', filter);
  table.tHead.addEventListener('click', function (e) {
    var th = e.target.closest('th'); if (!th) { return; }
    var i = th.cellIndex, dir = th.dataset.dir === 'asc' ? -1 : 1;
    Array.prototype.forEach.call(th.parentNode.cells, function (h) { delete h.dataset.dir; });
    th.dataset.dir = dir > 0 ? 'asc' : 'desc';
    function key(r) {
      var c = r.cells[i]; return c.dataset.v !== undefined ? c.dataset.v : c.textContent;
    }
    rows.sort(function (a, b) {
      var x = key(a), y = key(b), fx = parseFloat(x), fy = parseFloat(y);
      var c = (!isNaN(fx) && !isNaN(fy)) ? fx - fy : x.localeCompare(y);
      return dir * c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
  filter();
})();
"""
