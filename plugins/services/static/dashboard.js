// tradebot dashboard: REST for the first paint, then the /ws stream. No dependencies.
"use strict";

const SHOWN_BARS = 12, MAX_ROWS = 90, RATIO = 3, MIN_IMB = 10, KEEP_ROWS = 100;
const state = { bars: [], trades: [], signals: [] };
const $ = (id) => document.getElementById(id);

const EXCHANGE_TIME = new Intl.DateTimeFormat("en-GB", {
  timeZone: "America/New_York", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
function fmtTime(ns) {  // exchange time (ET), as traders read a CME chart
  return EXCHANGE_TIME.format(new Date(Number(BigInt(ns) / 1000000n)));
}
function money(v) { const n = Number(v); return (n >= 0 ? "" : "-") + "$" + Math.abs(n).toFixed(2); }
function cls(el, v) { el.classList.toggle("pos", Number(v) > 0); el.classList.toggle("neg", Number(v) < 0); }

// -- footprint -------------------------------------------------------------------------------------
function renderFootprint() {
  const root = $("footprint");
  root.textContent = "";
  if (!state.bars.length) { root.textContent = "waiting for the first bar to close..."; return; }
  const step = tickOf(state.bars.slice(-SHOWN_BARS));
  // the newest bars whose prices fit on one ladder together (at least the newest three)
  const bars = [];
  let hi = -Infinity, lo = Infinity;
  for (let i = state.bars.length - 1; i >= 0 && bars.length < SHOWN_BARS; i--) {
    const b = state.bars[i];
    const h = Math.max(hi, Number(b.high)), l = Math.min(lo, Number(b.low));
    if (bars.length >= 3 && (h - l) / step + 1 > MAX_ROWS) break;
    bars.unshift(b); hi = h; lo = l;
  }
  const prices = [];
  for (let p = hi; p >= lo - step / 2; p -= step) prices.push(Number(p.toFixed(6)));
  const axis = el("div", "fp-axis");
  axis.append(el("div", "fp-head", ""));
  for (const p of prices) axis.append(el("div", "fp-row", p.toFixed(decimals(step))));
  axis.append(el("div", "fp-foot", "Δ"));
  root.append(axis);
  for (const bar of bars) root.append(renderBar(bar, prices, step));
  root.scrollLeft = root.scrollWidth;
}

function renderBar(bar, prices, step) {
  const col = el("div", "fp-bar");
  col.dataset.barTs = bar.ts_open;
  const head = el("div", "fp-head");
  head.append(el("b", "", fmtTime(bar.ts_open).slice(0, 5)), document.createTextNode(`vol ${bar.volume}`));
  col.append(head);
  const levels = new Map(bar.levels.map(([p, b, a]) => [Number(p), [b, a]]));
  const at = (p) => levels.get(Number(p.toFixed(6))) || [0, 0];
  for (const p of prices) {
    const row = el("div", "fp-row");
    const [bid, ask] = at(p);
    if (p <= Number(bar.high) && p >= Number(bar.low)) {
      row.classList.add("range");
      const b = el("span", "b", String(bid)), a = el("span", "a", String(ask));
      const below = at(p - step)[0], above = at(p + step)[1];
      if (ask >= MIN_IMB && ask >= RATIO * below && p - step >= Number(bar.low) - 1e-9) a.classList.add("imb");
      if (bid >= MIN_IMB && bid >= RATIO * above && p + step <= Number(bar.high) + 1e-9) b.classList.add("imb");
      row.append(b, document.createTextNode("×"), a);
      if (Math.abs(p - Number(bar.poc)) < 1e-9) row.classList.add("poc");
      if (Math.abs(p - Number(bar.close)) < 1e-9) row.classList.add("close");
    }
    col.append(row);
  }
  const foot = el("div", "fp-foot", (bar.delta > 0 ? "+" : "") + bar.delta);
  cls(foot, bar.delta);
  col.append(foot);
  return col;
}

function tickOf(bars) {
  let best = Infinity;
  for (const bar of bars) {
    const ps = bar.levels.map((l) => Number(l[0]));
    for (let i = 1; i < ps.length; i++) best = Math.min(best, Math.abs(ps[i] - ps[i - 1]));
  }
  return Number.isFinite(best) && best > 0 ? Number(best.toFixed(6)) : 0.25;
}
function decimals(step) { const s = String(step); return s.includes(".") ? s.split(".")[1].length : 0; }
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// -- tables ----------------------------------------------------------------------------------------
function tradeRow(t) {
  const tr = el("tr");
  tr.dataset.bracket = t.bracket_id;
  const net = el("td", "", money(t.net_pnl));
  cls(net, t.net_pnl);
  tr.append(el("td", "", fmtTime(t.exit_ts_ns)), el("td", "", t.pattern), el("td", t.direction === "long" ? "buy" : "sell", t.direction),
            el("td", "", String(t.quantity)), el("td", "", t.entry_price), el("td", "", t.exit_price), el("td", "", t.exit_reason), net);
  return tr;
}
function signalRow(s) {
  const tr = el("tr");
  const decided = s.approved === undefined || s.approved === null ? "" : (s.approved ? "approved" : "rejected");
  const why = s.reasons ? (Array.isArray(s.reasons) ? s.reasons : JSON.parse(s.reasons)) : [];
  const decision = el("td", decided, decided);
  decision.title = why.join("\n");
  tr.append(el("td", "", fmtTime(s.ts_ns)), el("td", "", s.pattern), el("td", s.direction === "long" ? "buy" : "sell", s.direction),
            el("td", "", String(s.price)), el("td", "", Number(s.strength).toFixed(2)), decision);
  return tr;
}
function prepend(tableId, row) {
  const body = $(tableId).tBodies[0];
  body.prepend(row);
  while (body.rows.length > KEEP_ROWS) body.deleteRow(body.rows.length - 1);
}

// -- status ----------------------------------------------------------------------------------------
function renderStatus(s) {
  $("symbol").textContent = s.trading_symbol || s.symbol;
  const pill = $("status");
  pill.textContent = s.risk.halted ? "halted" : "trading";
  pill.className = "pill " + (s.risk.halted ? "halted" : "ok");
  pill.title = s.risk.halt_reason || "";
  $("pnl").textContent = money(s.risk.realized); cls($("pnl"), s.risk.realized);
  $("position").textContent = String(s.position);
  $("balance").textContent = money(s.account.balance);
  $("trade-count").textContent = String(s.summary.trades);
  if (s.last_price) $("last").textContent = s.last_price;
  if (s.regime) renderRegime(s.regime);
  const form = $("settings");
  for (const key of ["daily_profit_target", "daily_loss_limit", "max_position"]) {
    if (document.activeElement !== form.elements[key]) form.elements[key].value = s.risk[key];
  }
}
function renderRegime(r) {
  $("regime").textContent = r.regime.replace("_", " ");
  $("confidence").textContent = Math.round(r.confidence * 100) + "%";
  $("regime-reason").textContent = r.reason || "";
  const body = $("indicators").tBodies[0];
  body.textContent = "";
  for (const [k, v] of Object.entries(r.indicators || {})) {
    const tr = el("tr");
    tr.append(el("td", "", k.replace("_", " ")), el("td", "", Number.isFinite(v) ? Number(v).toFixed(2) : "–"));
    body.append(tr);
  }
}
let statusTimer = null;
function refreshStatusSoon() {
  if (statusTimer) return;
  statusTimer = setTimeout(async () => {
    statusTimer = null;
    try { renderStatus(await (await fetch("/api/session/status")).json()); } catch (e) { /* next time */ }
  }, 250);
}

// -- live stream -----------------------------------------------------------------------------------
function connect() {
  const ws = new WebSocket(`ws://${location.host}/ws`);
  ws.onopen = () => { $("status").classList.remove("down"); refreshStatusSoon(); };
  ws.onclose = () => { const p = $("status"); p.textContent = "disconnected"; p.className = "pill down"; setTimeout(connect, 2000); };
  ws.onmessage = (message) => {
    const m = JSON.parse(message.data);
    if (m.type === "bar") {
      state.bars.push(m.data);
      if (state.bars.length > 60) state.bars.shift();
      renderFootprint();
      refreshStatusSoon();
    } else if (m.type === "decision") {
      prepend("signals", signalRow({ ...m.data.signal, ts_ns: m.ts_ns, approved: m.data.intent !== null, reasons: m.data.reasons }));
    } else if (m.type === "trade_closed") {
      prepend("trades", tradeRow(m.data));
      refreshStatusSoon();
    } else if (m.type === "regime") {
      renderRegime(m.data);
    } else {
      refreshStatusSoon();
    }
  };
}

// -- controls --------------------------------------------------------------------------------------
function headers() {
  const token = $("token").value || sessionStorage.getItem("tradebot-token") || "";
  if ($("token").value) sessionStorage.setItem("tradebot-token", $("token").value);
  return { "Content-Type": "application/json", Authorization: "Bearer " + token };
}
for (const button of document.querySelectorAll("button[data-action]")) {
  button.addEventListener("click", async () => {
    const r = await fetch(`/api/session/${button.dataset.action}`, { method: "POST", headers: headers() });
    const body = await r.json();
    $("control-result").textContent = r.ok ? `${body.action}: done` : body.error;
    refreshStatusSoon();
  });
}
$("settings").addEventListener("submit", async (e) => {
  e.preventDefault();
  const data = {};
  for (const [k, v] of new FormData(e.target)) if (v !== "") data[k] = k === "max_position" ? Number(v) : v;
  const r = await fetch("/api/settings", { method: "POST", headers: headers(), body: JSON.stringify(data) });
  const body = await r.json();
  $("settings-result").textContent = r.ok ? "applied" : body.error;
  refreshStatusSoon();
});

// -- first paint -----------------------------------------------------------------------------------
(async function init() {
  $("token").value = sessionStorage.getItem("tradebot-token") || "";
  const [status, bars, trades, signals] = await Promise.all(
    ["/api/session/status", "/api/bars", "/api/trades?limit=100", "/api/signals?limit=100"].map((u) => fetch(u).then((r) => r.json())));
  renderStatus(status);
  state.bars = bars;
  renderFootprint();
  for (const t of trades.reverse()) prepend("trades", tradeRow(t));
  for (const s of signals.reverse()) prepend("signals", signalRow(s));
  connect();
})();
