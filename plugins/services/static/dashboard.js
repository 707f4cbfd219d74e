// tradebot dashboard: REST for the first paint, then the /ws stream. No dependencies, no CDN.
"use strict";

// footprint geometry (px) and rules
const HEAD_H = 34, FOOT_H = 36, AXIS_W = 64, CANDLE_W = 9;
// zoom levels: a bar column's width at least, a price row's height, the numbers' font size
const ZOOMS = [
  { col: 56, row: 12, font: 9 }, { col: 66, row: 13, font: 10 }, { col: 78, row: 15, font: 11 },
  { col: 94, row: 17, font: 11 }, { col: 116, row: 20, font: 12 }, { col: 144, row: 23, font: 13 }];
const ROWS_PER = [1, 2, 3, 4, 5, 10, 20, 25, 50, 100, 200, 500, 1000];  // ticks a price row may hold
const RATIO = 3, MIN_IMB = 10;  // as the imbalance detector: ask[P] vs bid[P-1], bid[P] vs ask[P+1]
const KEEP_BARS = 2000, KEEP_ROWS = 200, OLDER_BATCH = 200;

const state = { bars: [], forming: null, lastPrice: null, dec: 2 };
let ROW_H = 16, COL_W = 108, PER = 1;  // fitted to the panel at each render (PER: ticks a row)
// the visible window: endTs null is live (the newest bars, the forming one at the right), else the
// ts_open of the bar at the right edge (new bars do not move it); zoom: an index in ZOOMS
const view = { endTs: null, zoom: 2, exhausted: false, loading: false, win: null };
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

const EXCHANGE_TIME = new Intl.DateTimeFormat("en-GB", {
  timeZone: "America/New_York", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
function fmtTime(ns) {  // exchange time (ET), as traders read a CME chart
  return EXCHANGE_TIME.format(new Date(Number(BigInt(ns) / 1000000n)));
}
function money(v) {
  const n = Number(v);
  return (n < 0 ? "-" : "") + "$" + Math.abs(n).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}
function px(v) { return v === null || v === undefined ? "\u2013" : Number(v).toFixed(state.dec); }
function signed(n) { return (n > 0 ? "+" : "") + n; }
function tone(node, v) { node.classList.toggle("pos", Number(v) > 0); node.classList.toggle("neg", Number(v) < 0); }
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// -- footprint (hand-drawn SVG) --------------------------------------------------------------------
function tickOf(bars) {
  let best = Infinity;
  for (const bar of bars) {
    const ps = bar.levels.map((l) => Number(l[0]));
    for (let i = 1; i < ps.length; i++) best = Math.min(best, Math.abs(ps[i] - ps[i - 1]));
  }
  return Number.isFinite(best) && best > 0 ? Number(best.toFixed(9)) : 0.25;
}
function decimals(step) { const s = String(step); return s.includes(".") ? s.split(".")[1].length : 0; }

function qtyDigits(bar) {  // the widest bid or ask number of a bar (cached on it)
  if (bar._digits === undefined) {
    let most = 0;
    for (const [, b, a] of bar.levels) most = Math.max(most, b, a);
    bar._digits = String(most).length;
  }
  return bar._digits;
}

// the window over the bars the page holds: as many as fit the panel's width, newest at the right
function footprintWindow(width) {
  const live = view.endTs === null;
  const forming = live && state.forming && (!state.bars.length || state.forming.ts_open > state.bars[state.bars.length - 1].ts_open) ? state.forming : null;
  const all = forming ? state.bars.concat([forming]) : state.bars;
  const z = ZOOMS[view.zoom];
  let digits = 1;
  for (let i = Math.max(0, all.length - 400); i < all.length; i++) digits = Math.max(digits, qtyDigits(all[i]));
  // bid x ask at a readable width: two numbers, the x, the candle and the margins
  const need = CANDLE_W + 14 + 2 * (digits * z.font * 0.62 + 10);
  const room = Math.max(0, width - AXIS_W - 2);
  const n = Math.max(1, Math.floor(room / Math.max(z.col, need)));
  let end = all.length - 1;
  if (!live) {
    while (end > 0 && all[end].ts_open > view.endTs) end--;
    end = Math.max(end, Math.min(n, all.length) - 1);
  }
  const start = Math.max(0, end - n + 1);
  return { all, n, start, end, room, live };
}

function renderFootprint() {
  const root = $("footprint");
  const win = footprintWindow(root.clientWidth);
  view.win = win;
  updateTools(win);
  if (!win.all.length) { root.textContent = "waiting for the first bar to close\u2026"; return; }
  // fewer bars held than fit, or the window at the oldest one: ask the page for older bars
  if (win.start === 0 && (win.all.length < win.n || !win.live)) loadOlder();
  const bars = win.all.slice(win.start, win.end + 1);
  const z = ZOOMS[view.zoom];
  COL_W = Math.floor(win.room / win.n);  // the columns fill the panel's width
  const step = tickOf(bars);
  state.dec = decimals(step);
  const tick = (p) => Math.round(Number(p) / step);  // prices as integer ticks: exact keys
  // the price axis: the visible bars' low to high and a small margin, in rows of PER ticks
  let hiT = -Infinity, loT = Infinity;
  for (const b of bars) { hiT = Math.max(hiT, tick(b.high)); loT = Math.min(loT, tick(b.low)); }
  const margin = Math.max(1, Math.round((hiT - loT + 1) * 0.04));
  hiT += margin; loT -= margin;
  const target = Math.max(300, Math.min(720, Math.round(window.innerHeight * 0.62)));
  const fit = Math.max(8, Math.floor(target / z.row));
  PER = ROWS_PER.find((k) => Math.ceil((hiT - loT + 1) / k) <= fit) || ROWS_PER[ROWS_PER.length - 1];
  const rowOf = (t) => Math.floor(t / PER);
  const hi = rowOf(hiT), lo = rowOf(loT), rows = hi - lo + 1;
  ROW_H = Math.max(z.row, Math.min(z.row + 8, Math.floor(target / rows)));
  const width = bars.length * COL_W, height = HEAD_H + rows * ROW_H + FOOT_H;
  const font = `font-size: ${z.font}px`;
  const axisSvg = svg("svg", { class: "fp-axis-svg", width: AXIS_W, height, viewBox: `0 0 ${AXIS_W} ${height}`, style: font });
  const chart = svg("svg", { class: "fp-chart", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", style: font,
                             "data-low": (lo * PER * step).toFixed(state.dec), "data-high": ((hi * PER + PER - 1) * step).toFixed(state.dec) });
  const y = (r) => HEAD_H + (hi - r) * ROW_H;  // top of row r
  const dec = decimals(step);
  const last = rowOf(win.live && state.lastPrice !== null ? tick(state.lastPrice) : tick(bars[bars.length - 1].close));
  const axis = svg("g", { class: "fp-axis" });
  if (last >= lo && last <= hi) axis.append(svg("rect", { class: "fp-price-last-bg", x: 2, y: y(last) + 1, width: AXIS_W - 6, height: ROW_H - 2, rx: 2 }));
  for (let r = hi; r >= lo; r--) {
    axis.append(svg("text", { class: "fp-price" + (r === last ? " last" : ""), x: AXIS_W - 8, y: y(r) + ROW_H / 2 }, (r * PER * step).toFixed(dec)));
  }
  axis.append(svg("text", { class: "fp-axis-label", x: AXIS_W - 8, y: HEAD_H + rows * ROW_H + 15 }, "\u0394"));
  axis.append(svg("text", { class: "fp-axis-label", x: AXIS_W - 8, y: HEAD_H + rows * ROW_H + 29 }, "cum \u0394"));
  axisSvg.append(axis);
  bars.forEach((bar, j) => chart.append(renderBar(bar, j * COL_W, y, (p) => rowOf(tick(p)), rows)));
  root.replaceChildren(axisSvg, chart);
}

function renderBar(bar, x0, y, row, rows) {
  // the bar still forming is drawn faded and dashed, and is not an .fp-bar (those are closed)
  const g = svg("g", { class: bar.forming ? "fp-forming" : "fp-bar", "data-bar-ts": bar.ts_open });
  const mid = x0 + CANDLE_W + (COL_W - CANDLE_W) / 2;
  const left = x0 + CANDLE_W + 3, right = x0 + COL_W - 3;
  g.append(svg("line", { class: "fp-grid", x1: x0 + 0.5, x2: x0 + 0.5, y1: 0, y2: HEAD_H + rows * ROW_H + FOOT_H }));
  g.append(svg("text", { class: "fp-time", x: mid, y: 14 }, fmtTime(bar.ts_open).slice(0, 5)));
  g.append(svg("text", { class: "fp-vol", x: mid, y: 28 }, `vol ${bar.volume.toLocaleString("en-US")}`));
  const levels = new Map();  // row -> [bid, ask], summed over the row's ticks
  for (const [p, b, a] of bar.levels) {
    const r = row(p), had = levels.get(r) || [0, 0];
    levels.set(r, [had[0] + b, had[1] + a]);
  }
  const at = (r) => levels.get(r) || [0, 0];
  const high = row(bar.high), low = row(bar.low), poc = row(bar.poc);
  const vah = row(bar.vah), val = row(bar.val);
  const maxVol = Math.max(1, ...[...levels.values()].map(([b, a]) => b + a));
  g.append(svg("rect", { class: "fp-range", x: left, y: y(high), width: right - left, height: (high - low + 1) * ROW_H }));
  g.append(svg("rect", { class: "fp-va", x: left, y: y(vah), width: 3, height: (vah - val + 1) * ROW_H }));
  for (let r = high; r >= low; r--) {
    const [bid, ask] = at(r);
    const top = y(r), cy = top + ROW_H / 2;
    // a forming bar's POC may still move: marked apart from the closed bars' (.poc)
    const pocClass = r === poc ? (bar.forming ? " poc-forming" : " poc") : "";
    const rowG = svg("g", { class: "fp-row" + pocClass, "data-price": bar.levels.length ? r * PER : "" });
    const w = ((bid + ask) / maxVol) * (right - left);
    rowG.append(svg("rect", { class: "fp-prof", x: left, y: top + 2, width: w, height: ROW_H - 4 }));
    const buyImb = r > low && ask >= MIN_IMB && ask >= RATIO * at(r - 1)[0];
    const sellImb = r < high && bid >= MIN_IMB && bid >= RATIO * at(r + 1)[1];
    if (sellImb) rowG.append(svg("rect", { class: "fp-imb-sell", x: left + 4, y: top + 1, width: mid - left - 10, height: ROW_H - 2, rx: 2 }));
    if (buyImb) rowG.append(svg("rect", { class: "fp-imb-buy", x: mid + 6, y: top + 1, width: right - mid - 10, height: ROW_H - 2, rx: 2 }));
    rowG.append(svg("text", { class: "fp-num bid" + (sellImb ? " imb" : ""), x: mid - 7, y: cy }, String(bid)));
    rowG.append(svg("text", { class: "fp-x", x: mid, y: cy }, "\u00d7"));
    rowG.append(svg("text", { class: "fp-num ask" + (buyImb ? " imb" : ""), x: mid + 7, y: cy }, String(ask)));
    if (r === poc) rowG.append(svg("rect", { class: "fp-poc", x: left + 1, y: top + 0.5, width: right - left - 2, height: ROW_H - 1, rx: 2 }));
    g.append(rowG);
  }
  // the candle: wick high-low, body open-close
  const open = row(bar.open), close = row(bar.close);
  const kind = Number(bar.close) > Number(bar.open) ? "fp-up" : Number(bar.close) < Number(bar.open) ? "fp-down" : "fp-flat";
  const cx = x0 + 2 + (CANDLE_W - 2) / 2;
  g.append(svg("line", { class: `fp-wick ${kind}`, x1: cx, x2: cx, y1: y(high) + 2, y2: y(low) + ROW_H - 2 }));
  const bodyTop = y(Math.max(open, close)) + 3, bodyBottom = y(Math.min(open, close)) + ROW_H - 3;
  g.append(svg("rect", { class: kind, x: x0 + 2, y: bodyTop, width: CANDLE_W - 2, height: Math.max(2, bodyBottom - bodyTop), rx: 1 }));
  const foot = HEAD_H + rows * ROW_H;
  g.append(svg("line", { class: "fp-grid", x1: x0, x2: x0 + COL_W, y1: foot + 0.5, y2: foot + 0.5 }));
  const delta = svg("text", { class: "fp-delta", x: mid, y: foot + 15 }, signed(bar.delta));
  tone(delta, bar.delta);
  g.append(delta, svg("text", { class: "fp-cum", x: mid, y: foot + 29 }, signed(bar.cum_delta)));
  return g;
}

// -- footprint navigation: scroll back through the session, zoom, back to live ---------------------
function updateTools(win) {
  const live = $("fp-live");
  live.classList.toggle("on", win.live);
  live.setAttribute("aria-pressed", String(win.live));
  $("fp-newer").disabled = win.live;
  $("fp-older").disabled = win.start === 0 && view.exhausted;
  $("fp-zoom-in").disabled = view.zoom === ZOOMS.length - 1;
  $("fp-zoom-out").disabled = view.zoom === 0;
  const shown = win.all.slice(win.start, win.end + 1);
  $("fp-where").textContent = shown.length
    ? `${fmtTime(shown[0].ts_open).slice(0, 5)}\u2013${fmtTime(shown[shown.length - 1].ts_open).slice(0, 5)} ET \u00b7 ${shown.length} of ${state.bars.length} bars`
    : "";
}
function showEnd(end) {  // the bar at index end (of the bars held) at the right edge
  const bars = state.bars;
  if (!bars.length || end >= bars.length - 1) view.endTs = null;
  else view.endTs = bars[Math.max(0, Math.min(end, bars.length - 1))].ts_open;
  renderFootprint();
}
function currentEnd() {  // the index, in state.bars, of the bar at the right edge
  if (view.endTs === null) return state.bars.length - 1;
  let end = state.bars.length - 1;
  while (end > 0 && state.bars[end].ts_open > view.endTs) end--;
  return Math.max(end, Math.min(view.win ? view.win.n : 1, state.bars.length) - 1);
}
function showStart() {  // the session's first bars (fetched until the page has no older ones)
  view.endTs = -Infinity;
  renderFootprint();
}
function scrollBars(k) {  // k > 0: newer bars, k < 0: older
  const n = view.win ? view.win.n : 1;
  let end = currentEnd();
  if (view.endTs === null && k < 0 && view.win && view.win.end > state.bars.length - 1) end = state.bars.length - 1;  // the forming bar leaves first
  showEnd(Math.max(Math.min(n, state.bars.length) - 1, end + k));
}
function zoom(by) {
  const next = Math.max(0, Math.min(ZOOMS.length - 1, view.zoom + by));
  if (next !== view.zoom) { view.zoom = next; renderFootprint(); }
}
async function loadOlder() {
  if (view.loading || view.exhausted || !state.bars.length) return;
  view.loading = true;
  try {
    const older = await getJSON(`/api/bars?before=${BigInt(state.bars[0].ts_open)}&limit=${OLDER_BATCH}`);
    const added = mergeBars(older);
    if (!added) view.exhausted = true;
    else renderFootprint();
  } catch (e) { /* tried again at the next render */ } finally { view.loading = false; }
}
function mergeBars(list) {  // bars from the page, in any order, merged into those held: how many new
  const byTs = new Map(state.bars.map((b) => [b.ts_open, b]));
  let added = 0;
  for (const b of list) { if (!byTs.has(b.ts_open)) added++; byTs.set(b.ts_open, b); }
  state.bars = [...byTs.values()].sort((a, b) => a.ts_open - b.ts_open);
  if (state.bars.length > KEEP_BARS) state.bars.splice(0, state.bars.length - KEEP_BARS);
  return added;
}
function setupFootprintControls() {
  const root = $("footprint");
  $("fp-older").addEventListener("click", () => scrollBars(-Math.max(1, Math.floor((view.win ? view.win.n : 2) / 2))));
  $("fp-newer").addEventListener("click", () => scrollBars(Math.max(1, Math.floor((view.win ? view.win.n : 2) / 2))));
  $("fp-zoom-in").addEventListener("click", () => zoom(1));
  $("fp-zoom-out").addEventListener("click", () => zoom(-1));
  $("fp-live").addEventListener("click", () => { view.endTs = null; renderFootprint(); });
  let wheelRest = 0;
  root.addEventListener("wheel", (e) => {
    e.preventDefault();
    const delta = Math.abs(e.deltaX) > Math.abs(e.deltaY) ? e.deltaX : e.deltaY;
    if (e.ctrlKey) { zoom(delta < 0 ? 1 : -1); return; }  // ctrl+wheel (and a pinch): zoom
    wheelRest += e.deltaMode === 1 ? delta * 40 : delta;  // lines or pixels: 40 px a bar
    const k = Math.trunc(wheelRest / 40);
    if (k) { wheelRest -= k * 40; scrollBars(k); }  // wheel up (or swipe left): older bars
  }, { passive: false });
  let drag = null;  // pointer drag: the bars follow the pointer
  root.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    root.focus({ preventScroll: true });
    drag = { x: e.clientX, end: currentEnd(), id: e.pointerId };
    root.setPointerCapture(e.pointerId);
  });
  root.addEventListener("pointermove", (e) => {
    if (!drag || e.pointerId !== drag.id) return;
    const k = -Math.round((e.clientX - drag.x) / Math.max(1, COL_W));
    const n = view.win ? view.win.n : 1;
    const end = Math.max(Math.min(n, state.bars.length) - 1, drag.end + k);
    if (end !== currentEnd() || (view.endTs === null) !== (end >= state.bars.length - 1)) showEnd(end);
  });
  const stop = (e) => { if (drag && e.pointerId === drag.id) drag = null; };
  root.addEventListener("pointerup", stop);
  root.addEventListener("pointercancel", stop);
  root.parentElement.addEventListener("keydown", (e) => {  // the chart or its toolbar focused
    const page = Math.max(1, (view.win ? view.win.n : 2) - 1);
    const keys = {
      ArrowLeft: () => scrollBars(e.shiftKey ? -page : -1), ArrowRight: () => scrollBars(e.shiftKey ? page : 1),
      PageUp: () => scrollBars(-page), PageDown: () => scrollBars(page),
      Home: showStart, End: () => { view.endTs = null; renderFootprint(); },
      "+": () => zoom(1), "=": () => zoom(1), "-": () => zoom(-1), _: () => zoom(-1),
    };
    if (keys[e.key] && !e.ctrlKey && !e.metaKey && !e.altKey) { e.preventDefault(); keys[e.key](); }
  });
}

function addBar(bar) {
  const known = state.bars.findIndex((b) => b.ts_open === bar.ts_open);
  if (known >= 0) state.bars[known] = bar; else state.bars.push(bar);
  if (state.bars.length > KEEP_BARS) state.bars.splice(0, state.bars.length - KEEP_BARS);
  if (state.forming && state.forming.ts_open <= bar.ts_open) state.forming = null;
  state.lastPrice = bar.close;
}

// -- tables ----------------------------------------------------------------------------------------
function sideCell(direction) { return el("td", direction === "long" ? "buy" : "sell", direction); }
function tradeRow(t) {
  const tr = el("tr");
  tr.dataset.bracket = t.bracket_id;
  const net = el("td", "num", money(t.net_pnl));
  tone(net, t.net_pnl);
  tr.append(el("td", "", fmtTime(t.exit_ts_ns)), el("td", "", t.pattern || ""), sideCell(t.direction),
            el("td", "", String(t.quantity)), el("td", "", px(t.entry_price)), el("td", "", px(t.exit_price)),
            el("td", "", t.exit_reason), net);
  return tr;
}
function signalRow(s) {
  const tr = el("tr");
  const decided = s.approved === undefined || s.approved === null ? "" : (s.approved ? "approved" : "rejected");
  const why = Array.isArray(s.reasons) ? s.reasons : [];
  // the last reason is the one that decided ("rule: warming up (12/28 bars)"): shown without its label
  const last = why.length ? String(why[why.length - 1]).replace(/^rule: /, "") : "";
  const decision = el("td", "decision " + decided, decided + (decided === "rejected" && last ? ": " + last : ""));
  decision.title = why.join("\n");
  tr.title = why.join("\n");
  tr.append(el("td", "", fmtTime(s.ts_ns)), el("td", "", s.pattern), sideCell(s.direction),
            el("td", "", px(s.price)), el("td", "num", Number(s.strength).toFixed(2)), decision);
  if (why.length) {
    tr.classList.add("has-reasons");
    tr.addEventListener("click", () => toggleReasons(tr, why));
  }
  return tr;
}
function toggleReasons(tr, why) {  // a details row under the signal: the whole chain of reasons
  const next = tr.nextElementSibling;
  if (next && next.classList.contains("reasons")) { next.remove(); tr.classList.remove("open"); return; }
  const row = el("tr", "reasons"), cell = el("td");
  cell.colSpan = tr.cells.length;
  const list = el("ol");
  for (const reason of why) list.append(el("li", "", reason));
  cell.append(list); row.append(cell);
  tr.after(row); tr.classList.add("open");
}
function prepend(tableId, row, fresh) {
  const body = $(tableId).tBodies[0];
  if (fresh) row.classList.add("new");
  body.prepend(row);
  while (body.rows.length > KEEP_ROWS) body.deleteRow(body.rows.length - 1);
}
function fill(tableId, rows) { $(tableId).tBodies[0].replaceChildren(...rows); }

// -- status ----------------------------------------------------------------------------------------
function renderStatus(s) {
  $("symbol").textContent = s.trading_symbol || s.symbol;
  const pill = $("status");
  if (!pill.classList.contains("down")) {
    pill.textContent = s.risk.halted ? "halted" : "trading";
    pill.className = "pill " + (s.risk.halted ? "halted" : "ok");
    pill.title = s.risk.halt_reason || "";
  }
  $("pnl").textContent = money(s.risk.realized); tone($("pnl"), s.risk.realized);
  $("balance").textContent = money(s.account.balance);
  $("trade-count").textContent = String(s.summary.trades);
  if (s.last_price) { $("last").textContent = px(s.last_price); state.lastPrice = s.last_price; }
  if (s.last_ts_ns) $("last-time").textContent = fmtTime(s.last_ts_ns) + " ET";
  if (s.regime) renderRegime(s.regime);
  $("token-state").textContent = s.token_configured ? "" : "control disabled: no token configured";
  renderPosition(s);
  const form = $("settings");
  for (const key of ["daily_profit_target", "daily_loss_limit", "max_position"]) {
    if (document.activeElement !== form.elements[key]) form.elements[key].value = s.risk[key];
  }
}
function renderPosition(s) {  // from the status and from each live message
  $("position").textContent = signed(s.position);
  $("open-count").textContent = s.positions.length > 1 ? `${s.positions.length} open` : "";
  const u = $("unrealized");
  u.textContent = s.positions.length ? money(s.unrealized_pnl) : "\u2013"; tone(u, s.positions.length ? s.unrealized_pnl : 0);
  fill("positions", s.positions.map((p) => {
    const tr = el("tr");
    const pnl = el("td", "num", p.unrealized_pnl === null ? "\u2013" : money(p.unrealized_pnl));
    tone(pnl, p.unrealized_pnl);
    tr.append(sideCell(p.direction), el("td", "", String(p.quantity)), el("td", "", px(p.entry_price)),
              el("td", "sell", px(p.stop_price)), el("td", "buy", px(p.target_price)), pnl);
    return tr;
  }));
  $("flat").hidden = s.positions.length > 0;
}
let formingFrame = null;
function renderLive(d) {  // the live message: between bar closes, 4 a second at most
  if (d.last_price) { $("last").textContent = px(d.last_price); state.lastPrice = d.last_price; }
  if (d.last_ts_ns) $("last-time").textContent = fmtTime(d.last_ts_ns) + " ET";
  $("pnl").textContent = money(d.realized_pnl); tone($("pnl"), d.realized_pnl);
  renderPosition(d);
  const closed = state.bars.length ? state.bars[state.bars.length - 1].ts_open : -1;
  state.forming = d.forming_bar && d.forming_bar.ts_open > closed ? d.forming_bar : null;
  if (!formingFrame) formingFrame = requestAnimationFrame(() => { formingFrame = null; renderFootprint(); });
}
function renderStatistics(st) {
  $("win-rate").textContent = st.win_rate === null ? "\u2013" : Math.round(st.win_rate * 100) + "%";
  $("profit-factor").textContent = st.profit_factor === null ? (st.wins ? "\u221e" : "\u2013") : st.profit_factor;
  $("drawdown").textContent = money(st.max_drawdown);
}
function renderRegime(r) {
  $("regime").textContent = r.regime.replaceAll("_", " ");
  $("confidence").textContent = Math.round(r.confidence * 100) + "%";
  $("regime-reason").textContent = r.reason || "";
  fill("indicators", Object.entries(r.indicators || {}).map(([k, v]) => {
    const tr = el("tr");
    tr.append(el("td", "", k.replaceAll("_", " ")), el("td", "", v === null || !Number.isFinite(v) ? "\u2013" : Number(v).toFixed(2)));
    return tr;
  }));
}
const getJSON = (url) => fetch(url).then((r) => { if (!r.ok) throw new Error(url + ": " + r.status); return r.json(); });
let statusTimer = null;
function refreshStatusSoon() {  // many events in a burst: one refresh
  if (statusTimer) return;
  statusTimer = setTimeout(async () => {
    statusTimer = null;
    try {
      const [status, stats] = await Promise.all([getJSON("/api/session/status"), getJSON("/api/statistics")]);
      renderStatus(status); renderStatistics(stats);
    } catch (e) { /* the next event tries again */ }
  }, 200);
}
async function loadAll() {
  const [status, stats, bars, trades, signals] = await Promise.all(
    ["/api/session/status", "/api/statistics", "/api/bars", "/api/trades?limit=" + KEEP_ROWS, "/api/signals?limit=" + KEEP_ROWS].map(getJSON));
  renderStatus(status); renderStatistics(stats);
  mergeBars(bars);  // keeps the bars streamed meanwhile, and the older ones scrolled back to
  renderFootprint();
  fill("trades", trades.map(tradeRow));
  fill("signals", signals.map(signalRow));
}

// -- live stream -----------------------------------------------------------------------------------
let connected = false;
function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  ws.onopen = () => {
    $("status").classList.remove("down");
    if (connected) loadAll().catch(() => {});  // a reconnect: catch up on what was missed
    connected = true;
    refreshStatusSoon();
  };
  ws.onclose = () => {
    const pill = $("status"); pill.textContent = "disconnected"; pill.className = "pill down";
    setTimeout(connect, 2000);
  };
  ws.onmessage = (message) => {
    const m = JSON.parse(message.data);
    switch (m.type) {
      case "bar": addBar(m.data); renderFootprint(); $("last").textContent = px(m.data.close); refreshStatusSoon(); break;
      case "decision":
        prepend("signals", signalRow({ ...m.data.signal, ts_ns: m.ts_ns, approved: m.data.intent !== null, reasons: m.data.reasons }), true);
        break;
      case "trade_closed": {
        prepend("trades", tradeRow(m.data), true);
        const count = $("trade-count"); count.textContent = String(Number(count.textContent) + 1 || 1);
        refreshStatusSoon();
        break;
      }
      case "regime": renderRegime(m.data); break;
      case "live": renderLive(m.data); break;
      case "resync": loadAll().catch(() => {}); break;
      case "signal": break;  // shown with its decision
      default: refreshStatusSoon();
    }
  };
}

// -- controls --------------------------------------------------------------------------------------
function token() {
  let value = $("token").value || sessionStorage.getItem("tradebot-token") || "";
  if (!value) value = window.prompt("Control token (services.status_page.token):") || "";
  if (value) { sessionStorage.setItem("tradebot-token", value); $("token").value = value; }
  return value;
}
function headers() { return { "Content-Type": "application/json", Authorization: "Bearer " + token() }; }
function note(id, ok, text) { const n = $(id); n.textContent = text; n.classList.toggle("error", !ok); }
for (const button of document.querySelectorAll("button[data-action]")) {
  button.addEventListener("click", async () => {
    const action = button.dataset.action;
    if (action === "stop" && !window.confirm("Flatten every position and end the run?")) return;
    const r = await fetch(`/api/session/${action}`, { method: "POST", headers: headers() });
    const body = await r.json();
    if (r.status === 401) sessionStorage.removeItem("tradebot-token");
    note("control-result", r.ok, r.ok ? `${body.action}: done` : body.error);
    refreshStatusSoon();
  });
}
$("settings").addEventListener("submit", async (e) => {
  e.preventDefault();
  const data = {};
  for (const [k, v] of new FormData(e.target)) if (v !== "") data[k] = k === "max_position" ? Number(v) : v;
  const r = await fetch("/api/settings", { method: "POST", headers: headers(), body: JSON.stringify(data) });
  const body = await r.json();
  if (r.status === 401) sessionStorage.removeItem("tradebot-token");
  note("settings-result", r.ok, r.ok ? "applied" : body.error);
  refreshStatusSoon();
});

// -- first paint -----------------------------------------------------------------------------------
setupFootprintControls();
let resizeTimer = null;
window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(renderFootprint, 150); });
$("token").value = sessionStorage.getItem("tradebot-token") || "";
$("token").addEventListener("change", () => sessionStorage.setItem("tradebot-token", $("token").value));
loadAll().catch((e) => note("control-result", false, "could not load the state: " + e.message)).finally(connect);
