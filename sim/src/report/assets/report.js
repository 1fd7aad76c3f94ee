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
  var CLASS_COLORS = ['#5b6abf', '#c0392b', '#9aa3ad', '#b9dcb9', '#2e8b57', '#e67e22', '#c9b3e6', '#1f9bd1', '#ff0000', '#f5b7b1'];
  var CLASS_NAMES = ['API call', 'API error', 'guest kernel', 'access (direct)', 'access (trapped)', 'guest fault', 'query', 'harvest', 'failed', 'did not complete'];
  // Lanes of a concurrent trace (see report/lanes.rs): marks are [kind, thread, x, step, decision, a, b].
  var L = D.lanes;
  var MARK_COLORS = ['#8e44ad', '#2e8b57', '#1f9bd1', '#16a085', '#e67e22', '#e74c3c', '#27ae60'];
  var MARK_NAMES = ['inline step (in another thread\'s operation)', 'own lock-free step', 'step while a shootdown waits', 'shootdown acknowledged', 'shootdown requested', 'preemption', 'quiescent point'];
  var HW_VERBS = ['exits and acknowledges a shootdown', 'begins its access (TLB lookup)', 'looks its page up again', 'walks the tables after a TLB miss', 'completes its memory access', 'waits in the VMM'];
  var LOCK_COLOR = '#2c3e50', OP_COLOR = '#b7c7d9', OPEN_OP_COLOR = '#f5b7b1';
  // Per lane, the marks drawn in it (quiescent points in every lane), in order of x.
  var laneMarks = [];
  if (L) {
    for (var lt = 0; lt < L.threads; lt++) laneMarks.push([]);
    L.marks.forEach(function (m) {
      if (m[1] < 0) laneMarks.forEach(function (lm) { lm.push(m); });
      else laneMarks[m[1]].push(m);
    });
  }
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
  var paintedLanes = null;

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
    var laneH = 14;
    var threads = L ? L.threads : 0;
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

  function laneY(t) { return layout.lanesY + t * (layout.laneH + 3); }

  // [x0, x1] clipped to the view, in pixels; null when outside it.
  function span(x0, x1) {
    var a = Math.max(x0, view.from), b = Math.min(x1, view.to);
    if (a > b) return null;
    return [X(a), Math.max(1, X(b) - X(a))];
  }

  // One lane per thread: its operations (light; red when cut short by the failure), the PGM lock
  // held (dark), and marks for lock-free steps, shootdowns, acknowledgements, preemptions.
  function drawLanes() {
    if (!L) return;
    var h = layout.laneH;
    for (var t = 0; t < L.threads; t++) {
      ctx.fillStyle = '#f2f4f7';
      ctx.fillRect(GUTTER, laneY(t), layout.width - GUTTER, h);
      ctx.fillStyle = '#5d6675';
      ctx.fillText(L.names[t], 4, laneY(t) + h / 2);
    }
    L.ops.forEach(function (o) {
      var p = span(o[2], o[3]);
      if (!p) return;
      ctx.fillStyle = o[4] ? OP_COLOR : OPEN_OP_COLOR;
      ctx.fillRect(p[0], laneY(o[0]) + 1, p[1], h - 2);
      ctx.fillStyle = '#5d6675';
      if (o[2] >= view.from) ctx.fillRect(p[0], laneY(o[0]) + 1, 1, h - 2);
    });
    L.locks.forEach(function (k) {
      var p = span(k[1], k[2]);
      if (!p) return;
      ctx.fillStyle = LOCK_COLOR;
      ctx.fillRect(p[0], laneY(k[0]) + 4, Math.max(2, p[1]), h - 8);
    });
    var fine = stepWidth() > 3;
    L.marks.forEach(function (m) {
      if (m[2] < view.from || m[2] > view.to || (m[0] === 1 && !fine)) return;
      drawMark(m, X(m[2]));
    });
  }

  function drawMark(m, x) {
    var h = layout.laneH;
    ctx.fillStyle = MARK_COLORS[m[0]];
    if (m[0] === 6) {
      for (var t = 0; t < L.threads; t++) ctx.fillRect(x, laneY(t), 1, h);
      return;
    }
    var y = laneY(m[1]);
    if ((m[0] === 0 || m[0] === 2) && m[6] >= 0) {
      // A line from the thread whose operation it ran in.
      var y2 = laneY(m[6]) + h / 2, y1 = y + h / 2;
      ctx.fillRect(x, Math.min(y1, y2), 1, Math.abs(y2 - y1));
    }
    ctx.beginPath();
    if (m[0] === 0) { ctx.moveTo(x - 4, y); ctx.lineTo(x + 4, y); ctx.lineTo(x, y + h); }
    else if (m[0] === 2) { ctx.moveTo(x, y); ctx.lineTo(x + 4, y + h / 2); ctx.lineTo(x, y + h); ctx.lineTo(x - 4, y + h / 2); }
    else if (m[0] === 5) { ctx.moveTo(x - 3, y); ctx.lineTo(x + 3, y); ctx.lineTo(x, y + 5); }
    else { ctx.rect(x - (m[0] === 4 ? 1 : 0.5), y, m[0] === 4 ? 3 : 1.5, h); }
    ctx.fill();
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
    if (L && paintedLanes === null) {
      // Counted before the failing step and the selection are drawn across every lane.
      paintedLanes = 0;
      for (var t = 0; t < L.threads; t++) if (painted(laneY(t), laneY(t) + layout.laneH) > 0) paintedLanes++;
    }
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

  function laneAt(y) {
    if (!L) return -1;
    for (var t = 0; t < L.threads; t++) if (y >= laneY(t) && y < laneY(t) + layout.laneH) return t;
    return -1;
  }

  function fx(x) { return view.from + (x - GUTTER) / stepWidth(); }

  // The last interval of `list` on thread t (element 0) whose [x0, x1] (elements a, a+1) holds f.
  function holding(list, t, a, f) {
    var found = null;
    list.forEach(function (v) { if (v[0] === t && v[a] <= f && f <= v[a + 1]) found = v; });
    return found;
  }

  function markText(m) {
    var who = m[1] >= 0 ? L.names[m[1]] : '';
    var op = m[3] >= 0 ? ' (step ' + m[3] + ')' : '';
    var when = ' [decision ' + m[4] + ']';
    switch (m[0]) {
      case 0: return who + ' ' + HW_VERBS[m[5]] + op + ', inline in an operation of ' + L.names[m[6]] + when;
      case 1: return who + ' ' + HW_VERBS[m[5]] + op + when;
      case 2: return who + ' ' + HW_VERBS[m[5]] + op + ' while ' + L.names[m[6]] + ' waits for its shootdown' + when;
      case 3: return who + ' flushed its TLB: shootdown acknowledged' + when;
      case 4: return who + ' requests a TLB shootdown' + op + (m[5] ? '' : '; every vCPU flushed at once') + when;
      case 5: return 'preemption: ' + who + ' runs, ' + L.names[m[5]] + ' could have gone on' + when;
      default: return 'quiescent point: invariants checked' + when;
    }
  }

  // Hover text in lane t at pixel x: the nearest mark within 5 px, else the lock interval and the
  // operation under the cursor.
  function laneText(t, x) {
    var ms = laneMarks[t], lo = 0, hi = ms.length;
    var f0 = fx(x - 5), f1 = fx(x + 5);
    while (lo < hi) { var mid = (lo + hi) >> 1; if (ms[mid][2] < f0) lo = mid + 1; else hi = mid; }
    var lines = [];
    for (var k = lo; k < ms.length && ms[k][2] <= f1 && lines.length < 6; k++) lines.push(markText(ms[k]));
    var f = fx(x);
    var lock = holding(L.locks, t, 1, f);
    if (lock) lines.push(L.names[t] + ' holds the PGM lock' + (lock[3] >= 0 ? ' (step ' + lock[3] + ')' : ''));
    var o = holding(L.ops, t, 2, f);
    if (o) lines.push('step ' + o[1] + ': ' + D.ops[o[1]][0] + '\n-> ' + D.ops[o[1]][1] + (o[4] ? '' : ' (cut short)'));
    return lines.length ? lines.join('\n') : L.names[t] + ': idle';
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
    var lane = laneAt(y);
    if (lane >= 0) text = laneText(lane, x) || text;
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
      var lane = laneAt(ev.clientY - canvas.getBoundingClientRect().top);
      var o = lane >= 0 ? holding(L.ops, lane, 2, fx(x)) : null;
      select(o ? o[1] : stepAt(x));
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
    if (L) {
      item(OP_COLOR, 'lane: operation (began .. ended)');
      item(OPEN_OP_COLOR, 'lane: operation cut short by the failure');
      item(LOCK_COLOR, 'lane: PGM lock held');
      MARK_NAMES.forEach(function (n, i) { item(MARK_COLORS[i], 'lane: ' + n); });
    }
  }

  // How many sampled pixels of rows y0..y1 (CSS pixels; default: all) differ from the white
  // background and from the lanes' own (#f2f4f7): proof the timeline or the lanes were painted.
  function painted(y0, y1) {
    var dpr = window.devicePixelRatio || 1;
    var top = Math.round((y0 || 0) * dpr), bottom = Math.round((y1 === undefined ? layout.height : y1) * dpr);
    if (bottom <= top) return 0;
    var img = ctx.getImageData(Math.round(GUTTER * dpr), top, canvas.width - Math.round(GUTTER * dpr), bottom - top).data;
    var n = 0;
    for (var p = 0; p < img.length; p += 4 * 5) {
      var white = img[p] === 255 && img[p + 1] === 255 && img[p + 2] === 255;
      var lane = img[p] === 0xf2 && img[p + 1] === 0xf4 && img[p + 2] === 0xf7;
      if (!white && !lane) n++;
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
  status.dataset.lanes = String(L ? L.threads : 0);
  if (L) {
    status.dataset.laneOps = String(L.ops.length);
    status.dataset.laneLocks = String(L.locks.length);
    status.dataset.laneMarks = String(L.marks.length);
    // Lanes whose strip has painted pixels (operations, lock, marks): every one should.
    status.dataset.lanesPainted = String(paintedLanes);
  }
  // Milliseconds from the start of navigation (loading and parsing included) to now.
  status.dataset.ms = String(Math.round(performance.now()));
  status.textContent = 'report script ran: ' + ROWS.length + ' page rows x ' + N + ' steps';
})();
