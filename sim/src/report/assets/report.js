// pgmsim trace report: draws the timeline (pages x steps) from the JSON in #report-data,
// the operation strip and lanes aligned with it, and the details of the selected step.
// Hand-written, no dependencies; everything it needs is in this file.
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('report-data').textContent);
  var N = D.steps;
  var ROWS = D.rows;
  var STATE_COLORS = ['#e9edf1', '#f6d365', '#f39c4a', '#d64545'];
  var STATE_NAMES = ['none (.)', 'disabled (d)', 'write (W)', 'all (A)'];
  var TYPE_NAMES = { ' ': 'RAM', m: 'MMIO', '2': 'MMIO2', a: 'MMIO2 alias', h: 'special alias', r: 'ROM', s: 'shadow ROM', '?': 'invalid' };
  var ALIAS_COLORS = { a: '#2d6cdf', h: '#13a89e' };
  var KIND_COLORS = { Write: '#d35400', All: '#a93226', Mmio: '#7d3c98' };
  // Operation classes (see report/data.rs): api, api error, kernel, access, trapped, fault, query, harvest, failed.
  var CLASS_COLORS = ['#5b6abf', '#c0392b', '#9aa3ad', '#b9dcb9', '#2e8b57', '#e67e22', '#c9b3e6', '#1f9bd1', '#ff0000'];
  var CLASS_NAMES = ['API call', 'API error', 'guest kernel', 'access (direct)', 'access (trapped)', 'guest fault', 'query', 'harvest', 'failed'];
  var GUTTER = 168;
  var failStep = D.failure && D.failure.step !== null && D.failure.step !== undefined ? D.failure.step : null;
  var details = {};
  D.details.forEach(function (d) { details[d[0]] = d; });

  var canvas = document.getElementById('timeline-canvas');
  var ctx = canvas.getContext('2d');
  var hover = document.getElementById('hover');
  var view = { from: 0, to: Math.max(N, 1) };
  var selected = failStep !== null ? failStep : 0;
  var layout = null;

  function rowHeight(n) {
    if (n <= 10) return 22;
    if (n <= 40) return 14;
    if (n <= 120) return 8;
    if (n <= 400) return 4;
    return 2;
  }

  // Vertical layout: rows (with a gap where addresses jump), then the operation strip, then lanes.
  function computeLayout() {
    var rh = rowHeight(ROWS.length);
    var y = 18;
    var ys = [];
    ROWS.forEach(function (r, i) {
      if (i > 0 && r.g) y += rh >= 8 ? 5 : 2;
      ys.push(y);
      y += rh;
    });
    var opsY = y + 8;
    y = opsY + 12;
    var lanesY = y + 6;
    var laneH = 12;
    var threads = D.lanes ? D.lanes.threads : 0;
    y = lanesY + threads * (laneH + 3) + 4;
    var width = Math.max(320, document.getElementById('timeline').clientWidth - 2);
    return { rh: rh, ys: ys, opsY: opsY, lanesY: lanesY, laneH: laneH, height: y, width: width };
  }

  function stepWidth() { return (layout.width - GUTTER) / (view.to - view.from); }
  function X(step) { return GUTTER + (step - view.from) * stepWidth(); }
  function stepAt(x) { return Math.floor(view.from + (x - GUTTER) / stepWidth()); }

  function drawRun(y, h, from, to, s, t) {
    var a = Math.max(from, view.from);
    var b = Math.min(to, view.to);
    if (a >= b) return;
    var x0 = X(a);
    var w = Math.max(1, X(b) - x0);
    ctx.fillStyle = STATE_COLORS[s];
    ctx.fillRect(x0, y, w, h);
    if (ALIAS_COLORS[t]) {
      ctx.fillStyle = ALIAS_COLORS[t];
      ctx.fillRect(x0, y, w, Math.max(1, Math.floor(h / 3)));
    }
  }

  function drawRows() {
    var h = layout.rh > 3 ? layout.rh - 1 : layout.rh;
    ctx.font = (layout.rh >= 8 ? 11 : 9) + 'px ui-monospace, "DejaVu Sans Mono", monospace';
    ctx.textBaseline = 'middle';
    ROWS.forEach(function (r, i) {
      var y = layout.ys[i];
      var from = 0, s = r.s, t = r.t;
      r.ch.forEach(function (c) {
        drawRun(y, h, from, c[0], s, t);
        from = c[0]; s = c[1]; t = c[2];
      });
      drawRun(y, h, from, N, s, t);
      // A label on every row that has room, else on every k-th row.
      var every = Math.ceil(12 / layout.rh);
      if (i % every === 0) {
        ctx.fillStyle = '#1d2330';
        ctx.fillText(r.a + ' ' + (r.t === ' ' ? r.k : r.t), 4, y + layout.rh / 2);
      }
    });
  }

  function drawBands() {
    D.bands.forEach(function (b) {
      var from = Math.max(b.f < 0 ? 0 : b.f, view.from);
      var to = Math.min(b.t === null ? N : b.t, view.to);
      if (from >= to) return;
      var x0 = X(from), x1 = X(to);
      var y0 = layout.ys[b.r0] - 1, y1 = layout.ys[b.r1] + layout.rh;
      ctx.fillStyle = 'rgba(40, 60, 90, 0.06)';
      ctx.fillRect(x0, y0, x1 - x0, y1 - y0);
      ctx.strokeStyle = KIND_COLORS[b.k] || '#333';
      ctx.lineWidth = 1;
      ctx.strokeRect(Math.round(x0) + 0.5, Math.round(y0) + 0.5, Math.max(1, Math.round(x1 - x0) - 1), Math.max(1, Math.round(y1 - y0) - 1));
    });
  }

  function drawOps() {
    var w = Math.max(1, stepWidth());
    // Errors and failures last, so they stay visible when many steps share a pixel.
    [false, true].forEach(function (severe) {
      for (var i = view.from; i < Math.min(view.to, N); i++) {
        var c = D.ops[i][2];
        if ((c === 1 || c === 8 || c === 5) !== severe) continue;
        ctx.fillStyle = CLASS_COLORS[c];
        ctx.fillRect(X(i), layout.opsY, w, 10);
      }
    });
    ctx.fillStyle = '#5d6675';
    ctx.fillText('operations', 4, layout.opsY + 5);
  }

  function drawLanes() {
    if (!D.lanes) return;
    var L = D.lanes, w = Math.max(1, stepWidth());
    for (var t = 0; t < L.threads; t++) {
      var y = layout.lanesY + t * (layout.laneH + 3);
      ctx.fillStyle = '#f2f4f7';
      ctx.fillRect(GUTTER, y, layout.width - GUTTER, layout.laneH);
      ctx.fillStyle = '#5d6675';
      ctx.fillText('thread ' + t, 4, y + layout.laneH / 2);
    }
    for (var i = view.from; i < Math.min(view.to, N); i++) {
      var e = L.per_step[i];
      var yy = layout.lanesY + e[0] * (layout.laneH + 3);
      ctx.fillStyle = e[1] ? '#2c3e50' : '#9fb3c8';
      ctx.fillRect(X(i), yy, w, layout.laneH);
      var prev = i > 0 ? L.per_step[i - 1] : null;
      if (prev && prev[1] && !e[1]) {
        // The lock was released after the previous step: a marker in the holder's lane.
        var py = layout.lanesY + prev[0] * (layout.laneH + 3);
        ctx.fillStyle = '#e74c3c';
        ctx.fillRect(X(i) - 1, py, 2, layout.laneH);
      }
    }
  }

  // Step numbers along the top, at a round interval at least 70 pixels apart.
  function drawAxis() {
    var per = 70 / stepWidth();
    var tick = 1;
    while (tick < per) {
      var m = String(tick).charAt(0);
      tick *= m === '1' ? 2 : (m === '2' ? 2.5 : 2);
    }
    ctx.fillStyle = '#5d6675';
    ctx.textBaseline = 'top';
    var first = Math.ceil(view.from / tick) * tick;
    for (var i = first; i < view.to; i += tick) {
      ctx.fillRect(Math.round(X(i)), 12, 1, 4);
      ctx.fillText(String(i), Math.round(X(i)) + 2, 2);
    }
    ctx.textBaseline = 'middle';
    ctx.fillText('step', 4, 8);
  }

  function drawMarks() {
    var w = Math.max(2, stepWidth());
    if (failStep !== null && failStep >= view.from && failStep < view.to) {
      ctx.fillStyle = 'rgba(231, 76, 60, 0.22)';
      ctx.fillRect(X(failStep), 0, w, layout.height);
      ctx.fillStyle = '#e74c3c';
      ctx.fillRect(X(failStep), 0, 2, layout.height);
    }
    if (selected >= view.from && selected < view.to) {
      ctx.strokeStyle = '#1f4fd1';
      ctx.lineWidth = 1;
      ctx.strokeRect(Math.round(X(selected)) + 0.5, 0.5, Math.max(1, Math.round(w) - 1), layout.height - 1);
    }
  }

  function draw() {
    layout = computeLayout();
    var dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(layout.width * dpr);
    canvas.height = Math.round(layout.height * dpr);
    canvas.style.width = layout.width + 'px';
    canvas.style.height = layout.height + 'px';
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, layout.width, layout.height);
    if (ROWS.length === 0) {
      ctx.fillStyle = '#5d6675';
      ctx.fillText('no page changed in this trace', GUTTER, 12);
    }
    drawAxis();
    drawRows();
    drawBands();
    drawOps();
    drawLanes();
    drawMarks();
    document.getElementById('window').textContent =
      'steps ' + view.from + '..' + (view.to - 1) + ' of ' + N + ' (' + ROWS.length + ' pages that changed or start with a handler)';
  }

  // The state of row r after step i (before the first step for i < 0).
  function stateAt(r, i) {
    var s = r.s, t = r.t;
    for (var k = 0; k < r.ch.length && r.ch[k][0] <= i; k++) { s = r.ch[k][1]; t = r.ch[k][2]; }
    return [s, t];
  }

  function rowAt(y) {
    for (var i = 0; i < ROWS.length; i++) {
      if (y >= layout.ys[i] && y < layout.ys[i] + layout.rh) return i;
    }
    return -1;
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function list(title, items) {
    var box = document.createDocumentFragment();
    box.appendChild(el('div', '', title + (items.length ? ':' : ': none')));
    if (items.length) {
      var ul = el('ul', 'mono');
      items.forEach(function (t) { ul.appendChild(el('li', '', t)); });
      box.appendChild(ul);
    }
    return box;
  }

  function renderDetails(i) {
    var box = document.getElementById('step-details');
    box.textContent = '';
    document.getElementById('sel').textContent = N ? String(i) : '-';
    if (!N) return;
    var op = D.ops[i];
    box.appendChild(el('div', 'op mono', 'step ' + i + ': ' + op[0]));
    box.appendChild(el('div', op[2] === 8 ? 'failed' : 'mono', 'result: ' + op[1]));
    var d = details[i] || [i, [], []];
    box.appendChild(list('platform events', d[1]));
    box.appendChild(list('changes (before -> after)', d[2]));
    if (i === failStep && D.failure) {
      box.appendChild(el('div', 'failed', 'invariant ' + D.failure.invariant + ' failed: ' + D.failure.detail));
    }
  }

  function renderOps() {
    var ol = document.getElementById('ops');
    ol.textContent = '';
    var span = 300;
    var a = Math.max(0, Math.min(selected - span / 2, N - span));
    var b = Math.min(N, a + span);
    if (a > 0) ol.appendChild(el('li', 'more', '… ' + a + ' earlier steps (select a step on the timeline to move this list)'));
    for (var i = a; i < b; i++) {
      var li = el('li', D.ops[i][2] === 8 ? 'failed' : (D.ops[i][2] === 1 ? 'err' : ''));
      if (i === selected) li.className += ' sel';
      li.dataset.step = i;
      li.appendChild(el('span', 'i mono', String(i)));
      li.appendChild(el('span', 'op mono', D.ops[i][0]));
      li.appendChild(el('span', 'res mono', '  -> ' + D.ops[i][1]));
      ol.appendChild(li);
    }
    if (b < N) ol.appendChild(el('li', 'more', '… ' + (N - b) + ' later steps'));
    var sel = ol.querySelector('li.sel');
    if (sel) ol.scrollTop = sel.offsetTop - ol.clientHeight / 2;
  }

  function select(i) {
    if (!N) return;
    selected = Math.max(0, Math.min(N - 1, i));
    if (selected < view.from || selected >= view.to) {
      var span = view.to - view.from;
      view.from = Math.max(0, Math.min(selected - Math.floor(span / 2), N - span));
      view.to = view.from + span;
    }
    draw();
    renderDetails(selected);
    renderOps();
  }

  function showHover(ev) {
    var rect = canvas.getBoundingClientRect();
    var x = ev.clientX - rect.left, y = ev.clientY - rect.top;
    var i = stepAt(x);
    if (x < GUTTER || i < 0 || i >= N) { hover.style.display = 'none'; return; }
    var text = 'step ' + i + ': ' + D.ops[i][0] + '\n-> ' + D.ops[i][1];
    var r = rowAt(y);
    if (r >= 0) {
      var st = stateAt(ROWS[r], i);
      text += '\npage ' + ROWS[r].a + ' (' + ROWS[r].k + '): ' + STATE_NAMES[st[0]] + ', ' + TYPE_NAMES[st[1]];
    }
    hover.textContent = text;
    hover.style.display = 'block';
    hover.style.left = Math.min(ev.clientX + 14, window.innerWidth - 580) + 'px';
    hover.style.top = (ev.clientY + 14) + 'px';
  }

  var dragFrom = null;
  canvas.addEventListener('mousemove', showHover);
  canvas.addEventListener('mouseleave', function () { hover.style.display = 'none'; });
  canvas.addEventListener('mousedown', function (ev) { dragFrom = ev.clientX - canvas.getBoundingClientRect().left; });
  canvas.addEventListener('mouseup', function (ev) {
    var x = ev.clientX - canvas.getBoundingClientRect().left;
    if (dragFrom !== null && Math.abs(x - dragFrom) > 6) {
      var a = Math.max(0, stepAt(Math.min(x, dragFrom))), b = Math.min(N, stepAt(Math.max(x, dragFrom)) + 1);
      if (b - a >= 1) { view.from = a; view.to = b; draw(); }
    } else {
      select(stepAt(x));
    }
    dragFrom = null;
  });
  canvas.addEventListener('dblclick', function () { view.from = 0; view.to = Math.max(N, 1); draw(); });
  document.getElementById('ops').addEventListener('click', function (ev) {
    var li = ev.target.closest('li');
    if (li && li.dataset.step !== undefined) select(Number(li.dataset.step));
  });
  document.getElementById('zoom-reset').addEventListener('click', function () { view.from = 0; view.to = Math.max(N, 1); draw(); });
  document.getElementById('prev').addEventListener('click', function () { select(selected - 1); });
  document.getElementById('next').addEventListener('click', function () { select(selected + 1); });
  var failButton = document.getElementById('goto-failure');
  if (failButton) failButton.addEventListener('click', function () { if (failStep !== null) select(failStep); });
  document.addEventListener('keydown', function (ev) {
    if (ev.key === 'ArrowLeft') select(selected - 1);
    if (ev.key === 'ArrowRight') select(selected + 1);
  });
  window.addEventListener('resize', draw);

  function legend() {
    var box = document.getElementById('legend');
    function item(color, name) {
      var s = el('span', '');
      var sw = el('span', 'sw');
      sw.style.background = color;
      s.appendChild(sw);
      s.appendChild(document.createTextNode(name));
      box.appendChild(s);
    }
    STATE_NAMES.forEach(function (n, i) { item(STATE_COLORS[i], n); });
    item(ALIAS_COLORS.a, 'MMIO2 alias (top third)');
    item(ALIAS_COLORS.h, 'special alias (top third)');
    Object.keys(KIND_COLORS).forEach(function (k) { item(KIND_COLORS[k], k + ' handler (outline)'); });
    CLASS_NAMES.forEach(function (n, i) { item(CLASS_COLORS[i], 'op: ' + n); });
    if (D.lanes) { item('#2c3e50', 'lane: lock held'); item('#9fb3c8', 'lane: lock not held'); item('#e74c3c', 'lane: lock released'); }
  }

  // How many sampled pixels differ from the background: proof the timeline was painted.
  function painted() {
    var img = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    var n = 0;
    for (var p = 0; p < img.length; p += 4 * 5) {
      if (img[p] !== 255 || img[p + 1] !== 255 || img[p + 2] !== 255) n++;
    }
    return n;
  }

  legend();
  select(selected);
  var status = document.getElementById('report-status');
  status.dataset.state = 'ok';
  status.dataset.rows = String(ROWS.length);
  status.dataset.steps = String(N);
  status.dataset.painted = String(painted());
  status.dataset.lanes = String(D.lanes ? D.lanes.threads : 0);
  // Milliseconds from the start of navigation (loading and parsing included) to now.
  status.dataset.ms = String(Math.round(performance.now()));
  status.textContent = 'report script ran: ' + ROWS.length + ' page rows x ' + N + ' steps';
})();
