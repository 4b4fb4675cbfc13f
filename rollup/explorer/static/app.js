// The explorer's page: hash routes rendered from the explorer's JSON API, re-rendered on
// every `change` the server sends (server-sent events). Plain JavaScript, no dependency.
"use strict";

const UNIT = 1e6;            // collateral units per USD
const PPM = 1e6;             // parts per million (delta, margin fractions)
const WEI = 1e18;
const view = document.getElementById("view");
let summary = null;          // the last summary, and when it arrived (for the countdowns)
let summaryAt = 0;
let rendering = false, again = false;

// ------------------------------------------------------------------ formatting

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}
function num(n, digits = 0) {
  if (n === null || n === undefined) return "–";
  return Number(n).toLocaleString("en-US", {minimumFractionDigits: digits, maximumFractionDigits: digits});
}
function usd(units, digits = 2) { return units === null || units === undefined ? "–" : num(units / UNIT, digits); }
function eth(wei) { return num(wei / WEI, 4) + " ETH"; }
function short(hex, keep = 6) { return hex ? `${hex.slice(0, keep + 2)}…${hex.slice(-4)}` : "–"; }
function addr(a) { return a ? `<span class="mono" title="${esc(a)}">${esc(short(a))}</span>` : "–"; }
function hash(h) { return h ? `<span class="mono" title="${esc(h)}">${esc(short(h, 8))}</span>` : "–"; }
function ppm(value, digits = 2) { return (value / PPM).toFixed(digits); }
// a price in collateral units per lot, as USD per whole unit of the underlying
function price(units, lot) {
  if (units === null || units === undefined) return "–";
  const perUnit = (units / UNIT) / Number(lot || 1);
  return `<span title="${esc(units)} units per lot of ${esc(lot)}">${num(perUnit, perUnit < 10 ? 4 : 2)}</span>`;
}
function l1Now() { return summary ? summary.l1_now + Math.floor((Date.now() - summaryAt) / 1000) : Date.now() / 1000; }
function ago(ts) {
  const s = Math.max(0, l1Now() - ts);
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}
function when(ts) { return ts ? new Date(ts * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC" : "–"; }
function badge(status) { return `<span class="badge ${esc(status)}">${esc(status)}</span>`; }
function chips(types) {
  return Object.entries(types || {}).sort((a, b) => b[1] - a[1])
    .map(([t, n]) => `<span class="chip">${esc(t)} ×${n}</span>`).join("");
}
function table(headers, rows, cls = "") {
  const head = headers.map((h) => h.startsWith(">") ? `<th class="num">${esc(h.slice(1))}</th>` : `<th>${esc(h)}</th>`).join("");
  const body = rows.length ? rows.join("") : `<tr><td colspan="${headers.length}" class="muted">none</td></tr>`;
  return `<div class="scroll"><table class="${cls}"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>`;
}
function card(label, value, cls = "") { return `<div class="card ${cls}"><div class="label">${esc(label)}</div><div class="value">${value}</div></div>`; }
function countdown(deadline) {
  // the challenge window's remaining time, kept ticking by tick()
  return `<span class="countdown" data-deadline="${deadline}"></span>`;
}
function windowBar(batch) {
  const windowSeconds = (summary && summary.challenge_window) || 1;
  return `<div class="bar" data-deadline="${batch.deadline}" data-window="${windowSeconds}"><span></span></div>`;
}

// ------------------------------------------------------------------ data

async function api(path) {
  const response = await fetch(`/api/${path}`);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

// ------------------------------------------------------------------ pages

async function batchesPage() {
  const batches = await api("batches?limit=100");
  const proofs = await api("proofs");
  const byBatch = {};
  for (const p of proofs) for (const id of p.reverted.length ? p.reverted : [p.batch]) byBatch[id] = p;
  const items = batches.map((b) => {
    const proof = byBatch[b.id];
    const window = b.status === "pending" ? `<div class="window">${windowBar(b)} ${countdown(b.deadline)}</div>` : "";
    const note = proof ? `<div class="proof-note">fraud proven at step ${proof.step} of batch ${proof.batch}` +
      ` (${esc(proof.type || "?")}) by ${addr(proof.challenger)}: bond slashed ${eth(proof.reward + proof.burned)}</div>` : "";
    return `<li><a class="batch ${esc(b.status)}" href="#/batch/${b.id}" data-batch="${b.id}" data-status="${esc(b.status)}">
      <span class="id">#${b.id}</span><span>${badge(b.status)}</span>
      <span class="types">${b.steps} steps ${chips(b.types)}</span>
      <span class="meta">position ${b.position} · L1 block ${b.submitted.block} · ${ago(b.timestamp)}</span>
      ${window}${note}</a></li>`;
  });
  return `<h1>Batches</h1><p class="muted">Newest first. A pending batch becomes final when its challenge window ` +
    `closes unchallenged; a proven fraud reverts it and every batch after it.</p>` +
    `<ol class="timeline" id="timeline">${items.join("") || '<li class="muted">no batches yet</li>'}</ol>`;
}

function stepFields(step) {
  if (step.refused) return `<span class="sell">not a transaction: ${esc(step.refused)}</span>`;
  const parts = [];
  const walk = (prefix, value) => {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) walk(prefix ? `${prefix}.${k}` : k, v);
    } else if (Array.isArray(value)) {
      parts.push(`${prefix}: ${value.length} entries`);
    } else {
      parts.push(`${prefix}=${typeof value === "string" && value.length > 20 ? short(value) : value}`);
    }
  };
  walk("", step.fields);
  return esc(parts.join(" "));
}

async function batchPage(id) {
  const b = await api(`batches/${encodeURIComponent(id)}`);
  const disputed = new Set(b.proofs.filter((p) => p.batch === b.id).map((p) => p.step));
  const proofs = b.proofs.map((p) => `<div class="notice error" data-proof="${p.batch}">
      Fraud proven on batch <a href="#/batch/${p.batch}">#${p.batch}</a> at step ${p.step}
      (the STF ${p.reason === "OK" ? "applies it" : `refuses it: ${esc(p.reason)}`}, and the posted root after it
      is not the STF's) by ${addr(p.challenger)}; bond slashed ${eth(p.reward + p.burned)}
      (${eth(p.reward)} to the challenger, ${eth(p.burned)} burned); reverted batches
      ${p.reverted.map((r) => `<a href="#/batch/${r}">#${r}</a>`).join(", ")} · L1 tx ${hash(p.l1_tx)}</div>`).join("");
  const steps = (b.step_list || []).map((s) => `<tr class="${disputed.has(s.step) ? "disputed" : ""}" data-step="${s.step}">
      <td class="num">${s.step}</td><td>${esc(s.type)}</td><td class="wrap mono">${stepFields(s)}</td>
      <td>${hash(s.posted_root)}</td></tr>`);
  const stateLine = b.status === "pending" ? `${badge(b.status)} ${countdown(b.deadline)}` : badge(b.status);
  return `<h1>Batch #${b.id}</h1>${proofs}<div class="panel"><dl class="fields">
      <dt>status</dt><dd id="batch-status">${stateLine}</dd>
      <dt>position</dt><dd>${b.position}</dd>
      <dt>proposer</dt><dd class="mono">${esc(b.proposer)}</dd>
      <dt>steps</dt><dd>${b.steps} ${chips(b.types)}</dd>
      <dt>timestamp</dt><dd>${when(b.timestamp)}</dd>
      <dt>challenge deadline</dt><dd>${when(b.deadline)}</dd>
      <dt>state root</dt><dd class="mono">${esc(b.state_root)}</dd>
      <dt>step root</dt><dd class="mono">${esc(b.step_root)}</dd>
      <dt>L1 queues</dt><dd>${b.deposit_count} deposits, ${b.forced_count} forced requests consumed</dd>
      <dt>submitted</dt><dd>block ${b.submitted.block}, tx <span class="mono">${esc(b.submitted.l1_tx)}</span></dd>
      ${b.finalized ? `<dt>finalized</dt><dd>block ${b.finalized.block}, tx ${hash(b.finalized.l1_tx)}</dd>` : ""}
      ${b.reverted ? `<dt>reverted</dt><dd>block ${b.reverted.block}, tx ${hash(b.reverted.l1_tx)}</dd>` : ""}
    </dl></div><h2>Steps</h2>` +
    (b.step_list ? table([">step", "type", "fields", "posted root"], steps, "steps")
      : `<p class="notice">The batch's calldata could not be read from L1.</p>`);
}

async function proofsPage() {
  const proofs = await api("proofs");
  const rows = proofs.map((p) => `<tr data-proof="${p.batch}">
      <td><a href="#/batch/${p.batch}">#${p.batch}</a></td><td class="num">${p.step}</td><td>${esc(p.type || "?")}</td>
      <td>${esc(p.reason)}</td><td>${addr(p.challenger)}</td><td>${addr(p.proposer)}</td>
      <td class="num">${eth(p.reward + p.burned)}</td>
      <td>${p.paid ? `${eth(p.paid.amount)} paid to ${addr(p.paid.to)}` : `${eth(p.reward)} held`}</td>
      <td>${p.reverted.map((r) => `<a href="#/batch/${r}">#${r}</a>`).join(" ")}</td>
      <td>${p.block} ${hash(p.l1_tx)}</td></tr>`);
  return `<h1>Fraud proofs</h1><p class="muted">Each proof re-executed one step on L1 and found the posted root wrong; ` +
    `the batch and its descendants were reverted and the proposer's bond slashed (half to the challenger, half burned).</p>` +
    table(["batch", ">step", "type", "STF verdict", "challenger", "proposer", ">bond slashed", "reward", "reverted", "L1 block, tx"], rows);
}

async function marketsPage() {
  const markets = await api("markets");
  const symbols = Object.fromEntries(markets.map((m) => [m.id, m.symbol]));
  const perps = markets.filter((m) => m.product === "perpetual").map((m) => `<tr data-market="${m.id}">
      <td><a href="#/market/${m.id}">${esc(m.symbol)}</a></td><td class="num">${price(m.price, m.lot)}</td>
      <td class="num">${price(m.mark_price, m.lot)}</td><td class="num">${num(m.funding_index)}</td>
      <td class="num">${num(m.open_interest)}</td><td class="num buy">${price(m.best_bid, m.lot)}</td>
      <td class="num sell">${price(m.best_ask, m.lot)}</td>
      <td class="num">${m.last_trade ? price(m.last_trade.price, m.lot) : "–"}</td></tr>`);
  const series = markets.filter((m) => m.product !== "perpetual");
  const groups = {};
  for (const m of series) (groups[`${m.underlying}|${m.expiry}`] ||= []).push(m);
  const chains = Object.entries(groups).sort().map(([key, list]) => {
    const [underlying, expiry] = key.split("|");
    const strikes = [...new Set(list.map((m) => m.strike))].sort((a, b) => a - b);
    const side = (m) => m ? `<td class="num"><a href="#/market/${m.id}">${price(m.price, m.lot)}</a></td>
        <td class="num">${ppm(m.delta, 3)}</td><td class="num">${num(m.gamma)}</td><td class="num">${num(m.vega)}</td>
        <td class="num">${num(m.open_interest)}</td>` : `<td colspan="5"></td>`;
    const rows = strikes.map((k) => {
      const call = list.find((m) => m.strike === k && m.product === "call");
      const put = list.find((m) => m.strike === k && m.product === "put");
      const lot = (call || put).lot;
      return `<tr>${side(call)}<td class="strike">${price(k, lot)}</td>${side(put)}</tr>`;
    });
    return `<h2>${esc(symbols[underlying] || underlying)} options expiring ${when(Number(expiry))}</h2>` +
      table(["call mark", ">delta", ">gamma", ">vega", ">OI", "strike", ">put mark", ">delta", ">gamma", ">vega", ">OI"], rows, "chain");
  });
  return `<h1>Markets</h1><p class="muted">Prices in USD per unit of the underlying. The oracle price is what ` +
    `margin and funding use; the mark shown is the book's mid, else the last trade, else the oracle.</p>` +
    `<h2>Perpetuals</h2>` + table(["market", ">oracle", ">mark", ">funding index", ">open interest (lots)", ">best bid",
      ">best ask", ">last trade"], perps, "perps") + chains.join("");
}

async function marketPage(id) {
  const d = await api(`markets/${encodeURIComponent(id)}`);
  const m = d.market;
  const maxSize = Math.max(1, ...d.book.bids.map((l) => l[1]), ...d.book.asks.map((l) => l[1]));
  const level = (l, cls) => `<tr><td class="num ${cls}">${price(l[0], m.lot)}</td><td class="num">${num(l[1])}</td>
      <td class="num muted">${l[2]}</td><td class="bar-cell"><span class="fill" style="width:${(100 * l[1] / maxSize).toFixed(1)}%"></span></td></tr>`;
  const trades = d.trades.map((t) => `<tr><td class="num">${t.seq}</td><td class="num">${price(t.price, m.lot)}</td>
      <td class="num">${num(t.size)}</td><td><a href="#/account/${t.maker}">${t.maker}</a></td>
      <td><a href="#/account/${t.taker}">${t.taker}</a></td><td>${when(t.time)}</td></tr>`);
  const greeks = m.product !== "perpetual" ? card("delta", ppm(m.delta, 3)) + card("gamma", num(m.gamma)) +
    card("vega", num(m.vega)) + card("strike", price(m.strike, m.lot)) + card("expiry", when(m.expiry)) : "";
  return `<h1>${esc(m.symbol)} <span class="muted">${esc(m.product)}, lot ${esc(m.lot)}</span></h1>
    <div class="cards" style="padding:0 0 1rem">${card("oracle price", price(m.price, m.lot))}${card("mark", price(m.mark_price, m.lot))}
      ${card("funding index", num(m.funding_index))}${card("open interest", num(m.open_interest))}
      ${card("margin (initial / maint.)", `${ppm(m.initial_margin_ppm * 100, 1)}% / ${ppm(m.maintenance_margin_ppm * 100, 1)}%`)}${greeks}</div>
    <div class="book"><div><h2>Bids</h2>${table([">price", ">size", ">orders", ""], d.book.bids.map((l) => level(l, "buy")), "depth bids")}</div>
      <div><h2>Asks</h2>${table([">price", ">size", ">orders", ""], d.book.asks.map((l) => level(l, "sell")), "depth asks")}</div></div>
    <h2>Recent trades</h2>${table([">#", ">price", ">size (lots)", "maker", "taker", "rollup time"], trades, "trades")}`;
}

async function accountPage(ref) {
  const a = await api(`accounts/${encodeURIComponent(ref)}`);
  const health = a.maintenance_requirement > 0 ? `${num(100 * a.value / a.maintenance_requirement)}%` : "no requirement";
  const positions = a.positions.map((p) => `<tr data-position="${p.market}"><td><a href="#/market/${p.market}">${esc(p.symbol)}</a></td>
      <td class="${p.size > 0 ? "buy" : "sell"}">${p.size > 0 ? "long" : "short"}</td><td class="num">${num(Math.abs(p.size))}</td>
      <td class="num">${price(p.price, p.lot)}</td><td class="num">${usd(p.notional)}</td><td class="num">${ppm(p.delta, 2)}</td>
      <td class="num">${num(p.funding_index)}</td></tr>`);
  const portfolio = (a.portfolio || []).map((u) => `<tr><td>${esc(a.symbols[u.underlying] || u.underlying)}</td>
      <td class="num">${ppm(u.delta, 2)}</td><td class="num">${num(u.gamma)}</td><td class="num">${num(u.vega)}</td>
      <td class="num">${(u.worst_price_move_ppm / 1e4).toFixed(2)}%</td><td class="num">${usd(u.worst_loss)}</td>
      <td class="num">${usd(u.maintenance_requirement)}</td></tr>`);
  const orders = a.open_orders.map((o) => `<tr><td class="num">${o.id}</td><td>${esc(a.symbols[o.market] || o.market)}</td>
      <td class="${o.side}">${o.side}</td><td class="num">${num(o.size)}</td><td class="num">${num(o.remaining)}</td>
      <td class="num">${price(o.price, a.lots[o.market])}</td></tr>`);
  const withdrawals = a.withdrawals.map((w) => `<tr data-withdrawal="${w.index}"><td class="num">${w.index}</td>
      <td class="num">${usd(w.amount)}</td><td><span class="badge ${w.status === "claimed" ? "final" : w.status === "claimable" ? "pending" : ""}">${esc(w.status)}</span></td>
      <td>${w.claim ? `block ${w.claim.block} ${hash(w.claim.l1_tx)}` : w.batch !== undefined ? `final in batch <a href="#/batch/${w.batch}">#${w.batch}</a>` : ""}</td></tr>`);
  const deposits = a.deposits.map((x) => `<tr><td class="num">${x.index}</td><td class="num">${usd(x.amount)}</td>
      <td>block ${x.block} ${hash(x.l1_tx)}</td></tr>`);
  return `<h1>Account ${a.account}</h1><p class="mono muted">${esc(a.owner)}</p>
    <div class="cards" style="padding:0 0 1rem" id="account-cards">${card("collateral (USD)", usd(a.collateral))}
      ${card("value (USD)", usd(a.value))}${card("initial requirement", usd(a.initial_requirement))}
      ${card("maintenance requirement", usd(a.maintenance_requirement))}
      ${card("value / maintenance", health, a.maintenance_requirement > 0 && a.value < a.maintenance_requirement ? "alert" : "")}</div>
    <h2>Positions</h2>${table(["market", "side", ">size (lots)", ">oracle price", ">notional USD", ">delta", ">funding index"], positions, "positions")}
    ${portfolio.length ? `<h2>Portfolio margin by underlying</h2>${table(["underlying", ">net delta", ">net gamma", ">net vega", ">worst move", ">worst loss USD", ">maintenance USD"], portfolio)}` : ""}
    <h2>Open orders</h2>${table([">id", "market", "side", ">size", ">remaining", ">price"], orders)}
    <h2>Withdrawals</h2>${table([">index", ">amount USD", "status", "where"], withdrawals, "withdrawals")}
    <h2>Deposits (L1)</h2>${table([">index", ">amount USD", "L1"], deposits)}`;
}

async function deploymentPage() {
  const d = await api("deployment");
  const contracts = Object.entries(d.contracts).map(([name, a]) => `<tr><td>${esc(name)}</td><td class="mono">${esc(a)}</td></tr>`);
  const params = Object.entries(d.params).filter(([k]) => k !== "markets").map(([k, v]) =>
    `<tr><td>${esc(k)}</td><td class="wrap mono">${esc(Array.isArray(v) ? v.join(", ") : v)}</td></tr>`);
  const proposers = d.proposers.map((p) => `<tr><td class="mono">${esc(p.address)}${p.address === d.sequencer ? ' <span class="chip">sequencer</span>' : ""}</td>
      <td class="num">${eth(p.bond)}</td><td>${esc(p.last.event)} at block ${p.last.block}</td></tr>`);
  const frozen = d.frozen ? `<p class="notice error" id="frozen">Frozen at block ${d.frozen.block}: forced request ${d.frozen.forced_index} ` +
    `went unserved; accounts escape with their equity from final root ${hash(d.frozen.final_root)}.</p>`
    : `<p class="notice" id="frozen" style="border-color:var(--final);background:transparent">Not frozen: the rollup is live.</p>`;
  return `<h1>Deployment</h1>${frozen}<h2>Contracts (chain ${d.chain_id}, deployed at block ${d.deploy_block})</h2>` +
    table(["contract", "address"], contracts) + `<h2>Bonded proposers</h2>` + table(["proposer", ">bond", "last change"], proposers) +
    `<h2>Parameters</h2>` + table(["parameter", "value"], params);
}

// ------------------------------------------------------------------ frame

function renderSummary() {
  if (!summary) return;
  const s = summary, b = s.batches || {}, op = s.operator;
  document.getElementById("summary").innerHTML =
    card("L1 head", `#${num(s.head.number)}`) + card("pending", num(b.pending || 0)) + card("final", num(b.final || 0)) +
    card("reverted", num(b.reverted || 0), b.reverted ? "alert" : "") + card("fraud proofs", num(s.proofs), s.proofs ? "alert" : "") +
    card("rollup", s.frozen ? "frozen" : "live", s.frozen ? "alert" : "") +
    card("operator", op ? `${num(op.accounts)} accounts` : "unreachable", op ? "" : "alert");
  document.getElementById("footer").textContent = `L1 block ${s.head.number} at ${when(s.head.timestamp)} · challenge window ` +
    `${s.challenge_window} s` + (op ? ` · rollup state root ${short(op.state_root, 10)}` : " · operator unreachable");
}

const ROUTES = [
  [/^#?\/?$/, batchesPage, "batches"], [/^#\/batches$/, batchesPage, "batches"], [/^#\/batch\/(\d+)$/, batchPage, "batches"],
  [/^#\/proofs$/, proofsPage, "proofs"], [/^#\/markets$/, marketsPage, "markets"], [/^#\/market\/(\d+)$/, marketPage, "markets"],
  [/^#\/account\/([^/]+)$/, accountPage, ""], [/^#\/deployment$/, deploymentPage, "deployment"],
];

async function render() {
  if (rendering) { again = true; return; }
  rendering = true;
  try {
    const hashRoute = location.hash || "#/";
    const route = ROUTES.find(([re]) => re.test(hashRoute));
    document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active", !!route && a.dataset.nav === route[2]));
    if (!route) { view.innerHTML = `<p class="notice error">No such page: ${esc(hashRoute)}</p>`; return; }
    const match = hashRoute.match(route[0]);
    const html = await route[1](...match.slice(1).map(decodeURIComponent));
    view.innerHTML = html;
    view.dataset.page = route[2] || "account";
    tick();
  } catch (error) {
    view.innerHTML = `<p class="notice error" id="error">${esc(error.message)}</p>`;
  } finally {
    rendering = false;
    if (again) { again = false; render(); }
  }
}

function tick() {
  // the countdowns and window bars of pending batches, every second between updates
  const now = l1Now();
  document.querySelectorAll(".countdown[data-deadline]").forEach((el) => {
    const left = Number(el.dataset.deadline) - now;
    el.textContent = left > 0 ? `final in ${left} s` : "window closed: final at the next finalize";
  });
  document.querySelectorAll(".bar[data-deadline]").forEach((el) => {
    const windowSeconds = Number(el.dataset.window), left = Number(el.dataset.deadline) - now;
    const done = Math.min(1, Math.max(0, 1 - left / windowSeconds));
    el.firstElementChild.style.width = `${(100 * done).toFixed(1)}%`;
  });
}

function connect() {
  const live = document.getElementById("live");
  const source = new EventSource("/events");
  source.addEventListener("open", () => { live.className = "live on"; live.textContent = "live"; });
  source.addEventListener("error", () => { live.className = "live off"; live.textContent = "reconnecting"; });
  source.addEventListener("change", (event) => {
    summary = JSON.parse(event.data);
    summaryAt = Date.now();
    document.body.dataset.version = summary.version;
    renderSummary();
    render();
  });
}

document.getElementById("search").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = document.getElementById("search-input").value.trim();
  if (value) location.hash = `#/account/${encodeURIComponent(value)}`;
});
window.addEventListener("hashchange", render);
setInterval(tick, 1000);
connect();
render();
