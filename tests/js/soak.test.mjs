// Soak (issue #11): 200k vault events published at full rate into JetStream with
// oracle ticks at 50 Hz, `serve` killed with -9 half way and restarted while the
// publisher goes on. Checks that nothing crashes (the libnats 3.4.1 fetch overflow,
// nats.c issue 749, aborted here before the consumer was rewritten), that every
// event is applied exactly once (each account's equity equals its cash plus the
// sum of its deposits), and that no intent nonce is used twice. Resident memory and
// throughput are measured; with VR_SOAK_OUT set they are written there as JSON
// (bench/RESULTS.md records them). VR_SOAK_EVENTS changes the count.
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import {
  startNats, startServe, tempDir, cleanup, natsConnect, signedTick, publishTick, waitUntil, request, sleep, rssMiB,
  INTENT_SIGNER, ORACLE, VAULTRISK, SANITIZED,
} from "./harness.mjs";
import { spawn } from "node:child_process";

const EVENTS = Number(process.env.VR_SOAK_EVENTS || 200000);
const ACCOUNTS = 1000;
const NOW_S = Math.floor(Date.now() / 1000);
const enc = (o) => new TextEncoder().encode(JSON.stringify(o));
const initialCash = (a) => 150 + (a % 40) * 10;
const amount = (k) => 1 + (k % 7);  // whole numbers: every sum is exact in a double

function writeBook(dir) {
  const book = join(dir, "book");
  mkdirSync(book, { recursive: true });
  writeFileSync(join(book, "instruments.csv"), "id,kind,underlying,expiry,strike,type\nBTC-PERP,perp,BTC,,,\n");
  let acc = "account,cash\n", pos = "account,instrument,quantity,entry_price\n";
  for (let a = 1; a <= ACCOUNTS; a++) {
    acc += `${a},${initialCash(a)}\n`;
    pos += `${a},BTC-PERP,10,100\n`;
  }
  writeFileSync(join(book, "accounts.csv"), acc);
  writeFileSync(join(book, "positions.csv"), pos);
  writeFileSync(join(book, "market.json"), JSON.stringify({ time: NOW_S, underlyings: { BTC: { spot: 100, expiries: [] } } }));
  return book;
}

async function allIntents(nc) {
  const consumer = await nc.jetstream().consumers.get("INTENTS");  // ordered, from the start
  const out = [];
  for (;;) {
    let got = 0;
    for await (const m of await consumer.fetch({ max_messages: 10000, expires: 1000 })) {
      out.push(JSON.parse(new TextDecoder().decode(m.data)));
      got++;
    }
    if (got === 0) return out;
  }
}

test(`soak: ${EVENTS} vault events at full rate, ticks at 50 Hz, kill -9 half way`, { timeout: 600000 }, async () => {
  const dir = tempDir();
  const nats = await startNats(dir);
  const nc = await natsConnect(nats.url);
  const book = writeBook(dir);
  const extra = ["--max-tick-age-ms", "60000"];
  // Any exit but our own kill -9 and the final stop is a crash, reported with the log's tail.
  const crashes = [];
  const watch = (s) => {
    s.proc.once("exit", (code, signal) => { if (!s.expected) crashes.push(`exit ${code ?? signal}: ${s.log().slice(-1500)}`); });
    return s;
  };
  let serve = watch(await startServe({ url: nats.url, dir, book, market: join(book, "market.json"), extra }));
  const rss = { first: 0, second: 0 };
  let which = "first";
  const sampler = setInterval(() => {
    try {
      const r = rssMiB(serve.proc.pid);
      if (r > rss[which]) rss[which] = r;
    } catch { /* between instances */ }
  }, 200);
  try {
    // Ticks at 50 Hz from `vaultrisk oracle-sim` (a process of its own, as an oracle
    // is): a day of BTC per second at 80% vol, so accounts keep crossing maintenance
    // margin and intents keep being signed.
    writeFileSync(join(dir, "oracle.key"), ORACLE.privateKey + "\n");
    const oracle = spawn(VAULTRISK, ["oracle-sim", "--nats", nats.url, "--market", join(book, "market.json"),
      "--key", join(dir, "oracle.key"), "--rate", "50", "--speed", "86400", "--quiet"], { stdio: "ignore" });
    const oracleExit = new Promise((r) => oracle.once("exit", r));
    let ticks = 0;
    const tickSub = nc.subscribe("oracle.tick.BTC", { callback: () => { ticks++; } });

    const js = nc.jetstream();
    const expected = new Map();
    for (let a = 1; a <= ACCOUNTS; a++) expected.set(a, initialCash(a));
    const t0 = Date.now();
    let published = 0, killedAt = 0, restartMs = 0;
    const WINDOW = 2048;  // publishes in flight
    while (published < EVENTS) {
      const batch = [];
      for (let i = 0; i < WINDOW && published < EVENTS; i++, published++) {
        const k = published, a = 1 + (k % ACCOUNTS);
        expected.set(a, expected.get(a) + amount(k));
        batch.push(js.publish(`vault.event.deposit.${a}`, enc({ id: `soak-${k}`, account: a, amount: amount(k) }), { msgID: `soak-${k}` }));
      }
      await Promise.all(batch);
      if (!killedAt && published >= EVENTS / 2) {
        killedAt = published;
        serve.expected = true;
        serve.kill9();
        const r0 = Date.now();
        which = "second";
        serve = watch(await startServe({ url: nats.url, dir, book, market: join(book, "market.json"), extra }));
        restartMs = Date.now() - r0;
      }
    }
    const publishS = (Date.now() - t0) / 1000;
    assert.deepEqual(crashes, [], "serve crashed during the burst");
    const last = (await (await nc.jetstreamManager()).streams.info("VAULT")).state.last_seq;
    await waitUntil(async () => {
      assert.deepEqual(crashes, [], "serve crashed while catching up");
      return (await request(nc, "risk.api.health")).data.vault_seq >= last;
    }, 300000, "every event applied");
    const totalS = (Date.now() - t0) / 1000;
    oracle.kill("SIGTERM");
    await oracleExit;
    tickSub.unsubscribe();

    // Spot back at the entry price: each account's equity is exactly its cash.
    let seq = (await request(nc, "risk.api.health")).data.ticks.BTC;
    await publishTick(nc, "BTC", await signedTick("BTC", ++seq, 100));
    await waitUntil(async () => (await request(nc, "risk.api.health")).data.ticks.BTC === seq, 10000, "last tick");
    const wrong = [];
    for (let a = 1; a <= ACCOUNTS; a++) {
      const eq = (await request(nc, "risk.api.account", { account: a })).data.equity;
      if (eq !== expected.get(a)) wrong.push(`${a}: ${eq} != ${expected.get(a)}`);
    }
    assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} accounts off: each event applied exactly once`);

    const intents = (await allIntents(nc)).filter((i) => i.signer.toLowerCase() === INTENT_SIGNER);
    const nonces = intents.map((i) => BigInt(i.intent.nonce));
    assert.ok(nonces.length > 0, "intents were signed during the soak");
    assert.equal(new Set(nonces.map(String)).size, nonces.length, "no nonce twice");

    assert.deepEqual(crashes, [], "serve crashed");
    const figures = {
      events: EVENTS, accounts: ACCOUNTS, ticks, tick_rate: Math.round(ticks / totalS), killed_after: killedAt, restart_ms: restartMs,
      publish_s: Number(publishS.toFixed(2)), publish_rate: Math.round(EVENTS / publishS),
      applied_rate: Math.round(EVENTS / totalS), intents: nonces.length,
      rss_mib_peak_first: Number(rss.first.toFixed(1)), rss_mib_peak_second: Number(rss.second.toFixed(1)),
    };
    console.log("SOAK " + JSON.stringify(figures));
    if (process.env.VR_SOAK_OUT) writeFileSync(process.env.VR_SOAK_OUT, JSON.stringify(figures, null, 2) + "\n");
    // Bounded memory: 200k events must not grow the process like the unbounded queues did (514 MB).
    if (!SANITIZED) assert.ok(Math.max(rss.first, rss.second) < 256, `peak RSS ${JSON.stringify(rss)} MiB`);
  } finally {
    clearInterval(sampler);
    serve.expected = true;
    await serve.stop().catch(() => {});
    await nc.close();
    nats.stop();
    cleanup(dir);
  }
});
