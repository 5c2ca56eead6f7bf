// vaultrisk serve against a real nats-server: ticks, alerts, intents, rejects,
// vault events, the micro-service API, metrics, and kill -9 recovery.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { TypedDataEncoder, verifyTypedData, Wallet } from "ethers";
import {
  startNats, startServe, tempDir, cleanup, natsConnect, signedTick, publishTick, collect, waitUntil, request, sleep,
  INTENT_SIGNER, INTENT_TYPES, run,
} from "./harness.mjs";

const DAY = 86400;
const NOW_S = Math.floor(Date.now() / 1000);
const EXPIRY = NOW_S - (NOW_S % DAY) + 30 * DAY + 8 * 3600;
const SLICE = [{ expiry: EXPIRY, svi: { a: 0.04 * (30 / 365), b: 0.0, rho: 0.0, m: 0.0, sigma: 0.1 } }];

// erfc to ~1e-15 (Numerical Recipes erfc via Chebyshev fit, erfccheb): test-side only.
function erfc(x) {
  const cof = [-1.3026537197817094, 6.4196979235649026e-1, 1.9476473204185836e-2, -9.561514786808631e-3,
    -9.46595344482036e-4, 3.66839497852761e-4, 4.2523324806907e-5, -2.0278578112534e-5, -1.624290004647e-6,
    1.303655835580e-6, 1.5626441722e-8, -8.5238095915e-8, 6.529054439e-9, 5.059343495e-9, -9.91364156e-10,
    -2.27365122e-10, 9.6467911e-11, 2.394038e-12, -6.886027e-12, 8.94487e-13, 3.13092e-13, -1.12708e-13,
    3.81e-16, 7.106e-15, -1.523e-15, -9.4e-17, 1.21e-16, -2.8e-17];
  const z = Math.abs(x), t = 2 / (2 + z), ty = 4 * t - 2;
  let d = 0, dd = 0;
  for (let j = cof.length - 1; j > 0; j--) { const tmp = d; d = ty * d - dd + cof[j]; dd = tmp; }
  const r = t * Math.exp(-z * z + 0.5 * (cof[0] + ty * d) - dd);
  return x >= 0 ? r : 2 - r;
}

const DOMAIN = { name: "vaultrisk", version: "1", chainId: 31337n, verifyingContract: "0x0000000000000000000000000000000000000000" };

// Account 1: long 10 perps at 100 with 300 cash: equity 10S - 700, MM 1.74S, IM 2.2S.
// Healthy at 100, margin_call below 89.74, liquidatable below 84.75.
function writeBook(dir, accounts = 3) {
  const book = join(dir, "book");
  mkdirSync(book, { recursive: true });
  writeFileSync(join(book, "instruments.csv"),
    `id,kind,underlying,expiry,strike,type\nBTC-PERP,perp,BTC,,,\nBTC-C,option,BTC,${EXPIRY},110,C\n`);
  let acc = "account,cash\n1,300\n2,1000000\n3,5000\n";
  let pos = "account,instrument,quantity,entry_price\n1,BTC-PERP,10,100\n2,BTC-C,-1,\n3,BTC-PERP,-2,100\n";
  for (let a = 4; a <= accounts; a++) {
    acc += `${a},${1000 + a}\n`;
    pos += `${a},BTC-PERP,${(a % 7) - 3 || 1},${90 + (a % 20)}\n`;
  }
  writeFileSync(join(book, "accounts.csv"), acc);
  writeFileSync(join(book, "positions.csv"), pos);
  writeFileSync(join(book, "market.json"), JSON.stringify({ time: NOW_S, underlyings: { BTC: { spot: 100, expiries: SLICE } } }));
  return book;
}

async function readIntents(nc, max = 1000) {
  const js = nc.jetstream();
  const c = await js.consumers.get("INTENTS");
  const out = [];
  const iter = await c.fetch({ max_messages: max, expires: 1500 });
  for await (const m of iter) out.push({ msgId: m.headers?.get("Nats-Msg-Id"), data: JSON.parse(new TextDecoder().decode(m.data)) });
  return out;
}

function verifyIntent(i) {
  const digest = TypedDataEncoder.hash(DOMAIN, INTENT_TYPES, i.data.intent);
  assert.equal(i.data.digest, digest, "digest recomputed by ethers");
  assert.equal(i.msgId, digest, "Nats-Msg-Id is the digest");
  assert.equal(verifyTypedData(DOMAIN, INTENT_TYPES, i.data.intent, i.data.signature).toLowerCase(), INTENT_SIGNER);
  assert.equal(i.data.signer, INTENT_SIGNER);
}

describe("vaultrisk serve", () => {
  let dir, nats, serve, nc, seq = 1000;
  const tick = (spot, opts = {}) => signedTick("BTC", ++seq, spot, { expiries: SLICE, ...opts });

  before(async () => {
    dir = tempDir();
    nats = await startNats(dir);
    const book = writeBook(dir);
    serve = await startServe({ url: nats.url, dir, book, market: join(book, "market.json") });
    nc = await natsConnect(nats.url);
  });
  after(async () => {
    await nc?.close();
    await serve?.stop();
    nats?.stop();
    cleanup(dir);
  });

  test("a signed tick moves account 1 through margin_call to liquidatable, once each, with a verifiable intent", async () => {
    const alerts = collect(nc, "risk.alert.>");
    await publishTick(nc, "BTC", await tick(88));
    await waitUntil(() => alerts.out.some((a) => a.data.account === 1), 5000, "margin_call alert");
    await publishTick(nc, "BTC", await tick(87.5));  // same status: no new alert
    await publishTick(nc, "BTC", await tick(80));
    await waitUntil(() => alerts.out.filter((a) => a.data.account === 1).length >= 2, 5000, "liquidatable alert");
    await sleep(300);
    const mine = alerts.out.filter((a) => a.data.account === 1);
    assert.deepEqual(mine.map((a) => [a.subject, a.data.prev_status, a.data.status]), [
      ["risk.alert.margin_call.1", "healthy", "margin_call"],
      ["risk.alert.liquidatable.1", "margin_call", "liquidatable"],
    ]);
    const a = mine[1].data;
    assert.ok(Math.abs(a.equity - (10 * 80 - 700)) < 1e-9, `equity ${a.equity}`);
    assert.ok(Math.abs(a.mm - 1.74 * 80) < 1e-9, `mm ${a.mm}`);
    assert.equal(a.ticks.BTC, seq);
    alerts.stop();
    const intents = (await readIntents(nc)).filter((i) => i.data.intent.account === "1");
    assert.equal(intents.length, 1);
    verifyIntent(intents[0]);
    assert.equal(intents[0].data.intent.equity, String(100n * 10n ** 18n));  // 10*80 - 700 = 100, 18 decimals
    assert.ok(BigInt(intents[0].data.intent.deadline) > BigInt(Math.floor(Date.now() / 1000)));
  });

  test("every bad tick is rejected with its reason and changes nothing", async () => {
    const before = (await request(nc, "risk.api.account", { account: 1 })).data;
    const health0 = (await request(nc, "risk.api.health")).data;
    const rejects = collect(nc, "risk.reject.oracle");
    const lastAccepted = health0.ticks.BTC;
    const good = await tick(95);
    const stranger = Wallet.createRandom();
    const cases = [
      ["bad_signature", { body: good.body.replace("95", "96"), signature: "0x1234" }],
      ["unknown_signer", await tick(95, { wallet: stranger })],
      ["stale", await tick(95, { timeMs: Date.now() - 60000 })],
      ["replayed", await signedTick("BTC", lastAccepted, 95, { expiries: SLICE })],
      ["malformed", await signedTick("BTC", ++seq, "1e999")],
      ["out_of_range", await signedTick("BTC", ++seq, -5, { expiries: SLICE })],
      ["invalid_market", await signedTick("BTC", ++seq, 95, { expiries: [] })],  // an unexpired option without a smile
    ];
    // malformed: a literal overflow in the signed body
    cases[4][1] = await (async () => {
      const body = `{"underlying":"BTC","seq":${seq - 2},"time_ms":${Date.now()},"spot":1e999}`;
      return { body, signature: await (await import("./harness.mjs")).ORACLE.signMessage(body) };
    })();
    for (const [, t] of cases) await publishTick(nc, "BTC", t);
    await waitUntil(() => rejects.out.length >= cases.length, 5000, "rejects").catch((e) => {
      throw new Error(`${e.message}: got ${JSON.stringify(rejects.out.map((r) => r.data))}`);
    });
    assert.deepEqual(rejects.out.map((r) => r.data.reason), cases.map(([r]) => r));
    for (const r of rejects.out) {
      assert.equal(r.data.subject, "oracle.tick.BTC");
      assert.ok(r.data.detail.length > 0);
    }
    rejects.stop();
    const after = (await request(nc, "risk.api.account", { account: 1 })).data;
    assert.equal(after.equity, before.equity);
    assert.equal((await request(nc, "risk.api.health")).data.ticks.BTC, health0.ticks.BTC);
  });

  test("vault events apply once, in order, and a bad one is rejected and not redelivered", async () => {
    const js = nc.jetstream();
    const enc = (o) => new TextEncoder().encode(JSON.stringify(o));
    const eq0 = (await request(nc, "risk.api.account", { account: 3 })).data.equity;
    await js.publish("vault.event.deposit.3", enc({ id: "dep-1", account: 3, amount: 250 }), { msgID: "dep-1" });
    await js.publish("vault.event.deposit.3", enc({ id: "dep-1", account: 3, amount: 250 }), { msgID: "dep-1" });  // JetStream dedup
    await js.publish("vault.event.deposit.3", enc({ id: "dep-1", account: 3, amount: 250 }), { msgID: "dep-1-again" });  // same event id
    const rejects = collect(nc, "risk.reject.vault");
    await js.publish("vault.event.withdraw.999", enc({ id: "w-x", account: 999, amount: 1 }), { msgID: "w-x" });
    await js.publish("vault.event.deposit.4242", enc({ id: "new-acct", account: 4242, amount: 10 }), { msgID: "new-acct" });
    await waitUntil(async () => (await request(nc, "risk.api.account", { account: 4242 })).data.equity === 10, 8000, "new account");
    const eq1 = (await request(nc, "risk.api.account", { account: 3 })).data.equity;
    assert.ok(Math.abs(eq1 - eq0 - 250) < 1e-9, `deposit applied once: ${eq0} -> ${eq1}`);
    await sleep(500);
    assert.equal(rejects.out.length, 1, "one reject, no redelivery");
    assert.equal(rejects.out[0].data.reason, "invalid_event");
    assert.match(rejects.out[0].data.detail, /unknown account 999/);
    rejects.stop();
  });

  test("micro service discovery, the account API and its errors", async () => {
    const ping = (await request(nc, "$SRV.PING.vaultrisk")).data;
    assert.equal(ping.type, "io.nats.micro.v1.ping_response");
    assert.equal(ping.name, "vaultrisk");
    const info = (await request(nc, `$SRV.INFO.vaultrisk.${ping.id}`)).data;
    assert.deepEqual(info.endpoints.map((e) => [e.subject, e.queue_group]), [["risk.api.account", "q"], ["risk.api.health", "q"], ["risk.api.proof", "q"], ["risk.api.stress", "q"]]);
    const acct = (await request(nc, "risk.api.account", { account: 2 })).data;
    assert.equal(acct.underlyings.length, 1);
    assert.equal(acct.underlyings[0].scenario_pnl.length, 31);
    assert.equal(Math.min(0, ...acct.underlyings[0].scenario_pnl), acct.underlyings[0].scan);
    const missing = await request(nc, "risk.api.account", { account: 123456 });
    assert.equal(missing.headers.get("Nats-Service-Error-Code"), "404");
    const bad = await request(nc, "risk.api.account", { nope: 1 });
    assert.equal(bad.headers.get("Nats-Service-Error-Code"), "400");
    const stats = (await request(nc, "$SRV.STATS.vaultrisk")).data;
    const ep = stats.endpoints.find((e) => e.name === "account");
    assert.ok(ep.num_requests >= 3 && ep.num_errors >= 2, JSON.stringify(ep));
  });

  test("a listing the market cannot value yet is rejected; once a tick brings its smile it is listed and valued", async () => {
    const js = nc.jetstream();
    const enc = (o) => new TextEncoder().encode(JSON.stringify(o));
    const EXPIRY2 = EXPIRY + 7 * DAY;
    const alerts = collect(nc, "risk.alert.>");
    const rejects = collect(nc, "risk.reject.vault");
    const listing = { id: "BTC-C2", kind: "option", underlying: "BTC", expiry: EXPIRY2, strike: 100, type: "P" };
    await js.publish("vault.event.instrument.BTC", enc(listing), { msgID: "list-c2" });
    await waitUntil(() => rejects.out.length >= 1, 5000, "reject");
    assert.equal(rejects.out[0].data.reason, "invalid_event");
    assert.match(rejects.out[0].data.detail, /BTC-C2.*no SVI slice/);
    assert.equal((await request(nc, "risk.api.health")).data.status, "ok", "the book stays valued");
    const slice2 = { expiry: EXPIRY2, svi: { a: 0.05 * (37 / 365), b: 0, rho: 0, m: 0, sigma: 0.1 } };
    const timeMs = Date.now();
    await publishTick(nc, "BTC", await signedTick("BTC", ++seq, 95, { expiries: [...SLICE, slice2], timeMs }));
    await waitUntil(async () => (await request(nc, "risk.api.health")).data.ticks.BTC === seq, 5000, "tick");
    await js.publish("vault.event.instrument.BTC", enc(listing), { msgID: "list-c2-again" });
    await js.publish("vault.event.trade.2", enc({ id: "t-c2", account: 2, instrument: "BTC-C2", quantity: -1, price: 3 }), { msgID: "t-c2" });
    await waitUntil(async () => (await request(nc, "risk.api.account", { account: 2 })).data.underlyings?.[0]?.gamma < -0.02, 5000, "new position valued");
    const acct = (await request(nc, "risk.api.account", { account: 2 })).data;
    // Account 2: 1,000,000 cash, short the K=110 call, and now short the K=100 put
    // sold for 3; rate 0; flat smiles (b = 0), so vol = sqrt(a / T). Black-Scholes by hand:
    const N = (x) => 0.5 * erfc(-x / Math.SQRT2);
    const bs = (call, S, K, T, v) => {
      const d1 = (Math.log(S / K) + 0.5 * v * v * T) / (v * Math.sqrt(T)), d2 = d1 - v * Math.sqrt(T);
      return call ? S * N(d1) - K * N(d2) : K * N(-d2) - S * N(-d1);
    };
    const T1 = (EXPIRY - timeMs / 1000) / 31536000, T2 = (EXPIRY2 - timeMs / 1000) / 31536000;
    const v1 = Math.sqrt(SLICE[0].svi.a / T1), v2 = Math.sqrt(slice2.svi.a / T2);
    const expected = 1000000 + 3 - bs(true, 95, 110, T1, v1) - bs(false, 95, 100, T2, v2);
    assert.ok(Math.abs(acct.equity - expected) < 1e-6, `equity ${acct.equity} vs ${expected}`);
    assert.ok(alerts.out.every((a) => Number.isFinite(a.data.equity)), "no alert came from an unpriced book");
    assert.equal(rejects.out.length, 1, "the second listing was accepted");
    alerts.stop();
    rejects.stop();
  });

  test("the streams serve publishes to age out; VAULT, which recovery replays, does not", async () => {
    const jsm = await nc.jetstreamManager();
    const day = 24 * 3600 * 1e9;  // nanoseconds
    assert.equal((await jsm.streams.info("EPOCHS")).config.max_age, 30 * day);
    assert.equal((await jsm.streams.info("INTENTS")).config.max_age, 30 * day);
    assert.equal((await jsm.streams.info("VAULT")).config.max_age, 0);
  });

  test("Prometheus metrics", async () => {
    const text = await (await fetch(`http://127.0.0.1:${serve.metricsPort}/metrics`)).text();
    assert.match(text, /vaultrisk_ticks_accepted_total \d+/);
    assert.match(text, /vaultrisk_ticks_rejected_total\{reason="stale"\} 1/);
    assert.match(text, /vaultrisk_ticks_rejected_total\{reason="invalid_market"\} 1/);
    assert.match(text, /vaultrisk_ticks_rejected_total\{reason="out_of_range"\} 1/);
    assert.match(text, /vaultrisk_tick_to_alert_seconds_count [1-9]/);
    assert.match(text, /vaultrisk_accounts\{status="liquidatable"\}/);
    assert.match(text, /vaultrisk_intents_total [1-9]/);
    assert.match(text, /vaultrisk_vault_events_total\{result="rejected"\} 2/);
  });
});

// Issue #10: accounts opened and positions opened or closed are valued apart from
// the book's layout, and a full layout built in the background folds them in
// (--merge-accounts 3 makes it come at once). Nothing is laid out on the tick path,
// and every alert and value is exact before and after the swap.
describe("accounts and positions opened live", () => {
  let dir, nats, serve, nc, seq = 5000;
  const tick = (spot) => signedTick("BTC", ++seq, spot, { expiries: SLICE });
  const enc = (o) => new TextEncoder().encode(JSON.stringify(o));

  before(async () => {
    dir = tempDir();
    nats = await startNats(dir);
    const book = writeBook(dir);
    serve = await startServe({ url: nats.url, dir, book, market: join(book, "market.json"), extra: ["--merge-accounts", "3"] });
    nc = await natsConnect(nats.url);
  });
  after(async () => {
    await nc?.close();
    await serve?.stop();
    nats?.stop();
    cleanup(dir);
  });

  test("valued apart, folded in by a background layout, with exact alerts, values and intents throughout", async () => {
    const js = nc.jetstream();
    const alerts = collect(nc, "risk.alert.>");
    const open = async (id) => {  // like account 1: 300 cash, long 10 perps at 100: equity 10S - 700
      await js.publish(`vault.event.deposit.${id}`, enc({ id: `d${id}`, account: id, amount: 300 }), { msgID: `d${id}` });
      await js.publish(`vault.event.trade.${id}`, enc({ id: `t${id}`, account: id, instrument: "BTC-PERP", quantity: 10, price: 100 }),
        { msgID: `t${id}` });
    };
    for (const id of [101, 102, 103, 104, 105]) await open(id);
    // Account 3 closes its only position: the book's last position (105's) moves into its place.
    await js.publish("vault.event.trade.3", enc({ id: "c3", account: 3, instrument: "BTC-PERP", quantity: 2, price: 100 }), { msgID: "c3" });
    await waitUntil(() => /background layout swapped in: \d+ accounts/.test(serve.log()), 10000, "the background layout");
    assert.match(serve.log(), /background layout started: \d+ accounts laid out apart/);
    assert.doesNotMatch(serve.log(), /laying the whole book out again/);
    const a105 = (await request(nc, "risk.api.account", { account: 105 })).data;
    assert.equal(a105.equity, 300);
    assert.equal(a105.status, "healthy");
    const a3 = (await request(nc, "risk.api.account", { account: 3 })).data;
    assert.equal(a3.equity, 5000);
    assert.deepEqual(a3.underlyings, []);
    await open(106);  // after the swap: apart again
    await waitUntil(async () => (await request(nc, "risk.api.account", { account: 106 })).data.equity === 300, 5000, "account 106");
    const layout = (await request(nc, "risk.api.health")).data.layout;
    assert.ok(layout.merges >= 1 && layout.accounts_apart >= 1 && layout.positions_apart >= 1, JSON.stringify(layout));
    // Healthy at 100 (no alerts so far); margin_call at 88: equity 180, MM 1.74 * 88, IM 2.2 * 88.
    assert.equal(alerts.out.length, 0, JSON.stringify(alerts.out.map((a) => a.subject)));
    await publishTick(nc, "BTC", await tick(88));
    const fresh = [1, 101, 102, 103, 104, 105, 106];
    await waitUntil(() => fresh.every((id) => alerts.out.some((a) => a.data.account === id)), 5000, "margin_call alerts");
    for (const id of fresh) {
      const a = alerts.out.find((x) => x.data.account === id);
      assert.equal(a.subject, `risk.alert.margin_call.${id}`);
      assert.ok(Math.abs(a.data.equity - 180) < 1e-9 && Math.abs(a.data.mm - 1.74 * 88) < 1e-9, JSON.stringify(a.data));
      assert.equal(a.data.ticks.BTC, seq);
    }
    // Liquidatable at 80 (equity 100 < MM 139.2): an intent each, verifiable by ethers.
    await publishTick(nc, "BTC", await tick(80));
    await waitUntil(() => fresh.every((id) => alerts.out.some((a) => a.subject === `risk.alert.liquidatable.${id}`)), 5000, "liquidatable");
    await sleep(300);
    assert.equal(alerts.out.length, 2 * fresh.length, "one alert per account and status");
    const intents = (await readIntents(nc)).filter((i) => fresh.includes(Number(i.data.intent.account)));
    assert.equal(intents.length, fresh.length);
    for (const i of intents) {
      verifyIntent(i);
      assert.equal(i.data.intent.equity, String(100n * 10n ** 18n));
    }
    assert.equal(new Set(intents.map((i) => i.data.intent.nonce)).size, fresh.length, "no nonce repeats");
    alerts.stop();
  });
});

describe("intent deadlines", () => {
  test("an account still liquidatable after its intent's deadline gets a new intent with a new nonce", { timeout: 60000 }, async () => {
    const dir = tempDir();
    const nats = await startNats(dir);
    const book = writeBook(dir);
    const serve = await startServe({ url: nats.url, dir, book, market: join(book, "market.json"), extra: ["--intent-ttl", "1"] });
    const nc = await natsConnect(nats.url);
    try {
      await publishTick(nc, "BTC", await signedTick("BTC", 1, 80, { expiries: SLICE }));  // account 1 liquidatable
      await waitUntil(async () => (await readIntents(nc)).filter((i) => i.data.intent.account === "1").length >= 2, 15000, "re-issued intent");
      const mine = (await readIntents(nc)).filter((i) => i.data.intent.account === "1");
      mine.forEach(verifyIntent);
      assert.ok(BigInt(mine[1].data.intent.nonce) > BigInt(mine[0].data.intent.nonce));
      assert.ok(BigInt(mine[1].data.intent.deadline) > BigInt(mine[0].data.intent.deadline));
      assert.notEqual(mine[0].data.digest, mine[1].data.digest);
    } finally {
      await nc.close();
      await serve.stop();
      nats.stop();
      cleanup(dir);
    }
  });
});

describe("crash recovery", () => {
  // The same events and ticks, once uninterrupted and once with kill -9 in the
  // middle of the burst: the final states agree, no event is lost or applied
  // twice, and no nonce is reused.
  const N_ACCOUNTS = 40, N_EVENTS = 300;
  const events = [];
  for (let k = 0; k < N_EVENTS; k++) {
    const a = 1 + (k % N_ACCOUNTS);
    if (k % 3 === 0) events.push([`vault.event.deposit.${a}`, { id: `e${k}`, account: a, amount: 1 + (k % 17) }]);
    else events.push([`vault.event.trade.${a}`, { id: `e${k}`, account: a, instrument: "BTC-PERP", quantity: (k % 5) - 2 || 1, price: 95 + (k % 11) }]);
  }
  const enc = (o) => new TextEncoder().encode(JSON.stringify(o));
  // Both runs value the book at the same instant (options carry theta).
  const FINAL_TIME = Date.now();
  // Frequent snapshots, so the kill lands among background snapshot writes too.
  const extra = ["--max-tick-age-ms", "120000", "--snapshot-every", "25"];

  async function scenario(crash) {
    const dir = tempDir();
    const nats = await startNats(dir);
    const book = writeBook(dir, N_ACCOUNTS);
    const nc = await natsConnect(nats.url);
    let serve = await startServe({ url: nats.url, dir, book, market: join(book, "market.json"), extra });
    const js = nc.jetstream();
    let seq = 5000;
    const tickAndWait = async (spot, timeMs = Date.now()) => {
      await publishTick(nc, "BTC", await signedTick("BTC", ++seq, spot, { expiries: SLICE, timeMs }));
      await waitUntil(async () => (await request(nc, "risk.api.health")).data.ticks.BTC === seq, 5000, `tick ${spot}`);
    };
    for (let k = 0; k < N_EVENTS; k++) {
      await js.publish(events[k][0], enc(events[k][1]), { msgID: events[k][1].id });
      if (k === 100) await tickAndWait(50);  // liquidations, and intents, before the crash
      if (crash && k === 150) {
        serve.kill9();
        await sleep(200);
        serve = await startServe({ url: nats.url, dir, extra });  // state only: no --book
      }
    }
    const last = (await (await nc.jetstreamManager()).streams.info("VAULT")).state.last_seq;
    await waitUntil(async () => (await request(nc, "risk.api.health")).data.vault_seq >= last, 20000, "all events applied");
    await tickAndWait(110);  // everyone recovers ...
    await tickAndWait(20);   // ... and falls further: new intents after the restart
    await tickAndWait(83, FINAL_TIME);
    const state = [];
    for (let a = 1; a <= N_ACCOUNTS; a++) state.push((await request(nc, "risk.api.account", { account: a })).data);
    const intents = await readIntents(nc);
    if (process.env.VR_DEBUG) console.log(serve.log());
    await nc.close();
    await serve.stop();
    nats.stop();
    cleanup(dir);
    return { state, intents };
  }

  test("kill -9 mid-burst and restart lose nothing and reuse no nonce", { timeout: 120000 }, async () => {
    const clean = await scenario(false);
    const crashed = await scenario(true);
    for (let k = 0; k < N_ACCOUNTS; k++) {
      const a = clean.state[k], b = crashed.state[k];
      for (const f of ["equity", "mm", "im"]) assert.ok(Math.abs(a[f] - b[f]) <= 1e-9 * (1 + Math.abs(a[f])), `account ${k + 1} ${f}: ${a[f]} vs ${b[f]}`);
      assert.equal(a.status, b.status, `account ${k + 1} status`);
    }
    // Deposits applied exactly once: account 1's cash part is known in closed form.
    const nonces = crashed.intents.map((i) => BigInt(i.data.intent.nonce));
    for (let k = 1; k < nonces.length; k++) assert.ok(nonces[k] > nonces[k - 1], `nonce ${nonces[k]} after ${nonces[k - 1]}`);
    // Intents on both sides of the crash; the restart skipped the reserved block.
    assert.ok(nonces.some((n) => n < 1024n) && nonces.some((n) => n >= 1024n), `nonces ${nonces.join(",")}`);
    assert.equal(new Set(crashed.intents.map((i) => i.data.digest)).size, crashed.intents.length, "no intent twice");
    for (const i of crashed.intents) verifyIntent(i);
  });
});
