// Poison input against a real nats-server and `vaultrisk serve` (issue #11): every
// input that once stopped the loop, lost events or corrupted state, each a
// regression test. Rejects name the reason; the state does not change; the loop,
// the API, the epochs and the restart keep working.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync, readFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import {
  startNats, startServe, tempDir, cleanup, natsConnect, signedTick, publishTick, collect, waitUntil, request, sleep,
  rawPublish, rssMiB, SANITIZED,
} from "./harness.mjs";

const DAY = 86400;
const NOW_S = Math.floor(Date.now() / 1000);
const EXPIRY = NOW_S - (NOW_S % DAY) + 30 * DAY + 8 * 3600;
const SLICE = [{ expiry: EXPIRY, svi: { a: 0.04 * (30 / 365), b: 0.0, rho: 0.0, m: 0.0, sigma: 0.1 } }];
const enc = (o) => new TextEncoder().encode(typeof o === "string" ? o : JSON.stringify(o));

// Account 1 is liquidatable at spot 80 (10 long perps at 100, 300 cash); 2 holds a
// short call; 3..5 are healthy perp accounts.
function writeBook(dir) {
  const book = join(dir, "book");
  mkdirSync(book, { recursive: true });
  writeFileSync(join(book, "instruments.csv"),
    `id,kind,underlying,expiry,strike,type\nBTC-PERP,perp,BTC,,,\nBTC-C,option,BTC,${EXPIRY},110,C\n`);
  writeFileSync(join(book, "accounts.csv"), "account,cash\n1,300\n2,1000000\n3,5000\n4,20951.32\n5,7000\n");
  writeFileSync(join(book, "positions.csv"),
    "account,instrument,quantity,entry_price\n1,BTC-PERP,10,100\n2,BTC-C,-1,\n3,BTC-PERP,-2,100\n4,BTC-PERP,1,100\n5,BTC-PERP,1,100\n");
  writeFileSync(join(book, "market.json"), JSON.stringify({ time: NOW_S, underlyings: { BTC: { spot: 100, expiries: SLICE } } }));
  return book;
}

async function account(nc, a) {
  return (await request(nc, "risk.api.account", { account: a })).data;
}

describe("poison input", () => {
  let dir, nats, serve, nc, book, seq = 100;
  const tick = (spot, opts = {}) => signedTick("BTC", ++seq, spot, { expiries: SLICE, ...opts });
  const extra = ["--epoch-seconds", "1"];
  let rejects;

  before(async () => {
    dir = tempDir();
    nats = await startNats(dir, { maxPayload: 8 * 1024 * 1024 });
    book = writeBook(dir);
    serve = await startServe({ url: nats.url, dir, book, market: join(book, "market.json"), extra });
    nc = await natsConnect(nats.url);
    rejects = collect(nc, "risk.reject.>");
  });
  after(async () => {
    rejects?.stop();
    await nc?.close();
    await serve?.stop();
    nats?.stop();
    cleanup(dir);
  });

  // Publishes one vault event and waits for the service to have consumed it.
  async function vault(subject, body, msgID) {
    const js = nc.jetstream();
    const ack = await js.publish(subject, enc(body), msgID ? { msgID } : undefined);
    await waitUntil(async () => (await request(nc, "risk.api.health")).data.vault_seq >= ack.seq, 5000, `event ${ack.seq}`);
    return ack.seq;
  }
  const rejectsFor = (source) => rejects.out.filter((r) => r.subject === `risk.reject.${source}`).map((r) => r.data);

  test("a trade of -1e300 options is out_of_range; intents, the API and epochs go on", async () => {
    const eq2 = (await account(nc, 2)).equity;
    const n0 = rejectsFor("vault").length;
    await vault("vault.event.trade.2", { id: "huge-trade", account: 2, instrument: "BTC-C", quantity: -1e300, price: 0 });
    await waitUntil(() => rejectsFor("vault").length > n0, 5000, "reject");
    const r = rejectsFor("vault").at(-1);
    assert.equal(r.reason, "out_of_range");
    assert.match(r.detail, /quantity/);
    assert.equal((await account(nc, 2)).equity, eq2, "state unchanged");
    // Another account still gets its intent when it becomes liquidatable.
    const intents = collect(nc, "sequencer.intent.liquidation");
    await publishTick(nc, "BTC", await tick(80));
    await waitUntil(() => intents.out.some((i) => i.data.intent.account === "1"), 5000, "intent for account 1");
    intents.stop();
    const h = (await request(nc, "risk.api.health")).data;
    await waitUntil(async () => (await request(nc, "risk.api.health")).data.epochs.last_closed_epoch > h.epochs.last_closed_epoch, 5000, "an epoch closes");
  });

  test("a deposit of 1e59 is out_of_range and proofs keep being served", async () => {
    const n0 = rejectsFor("vault").length;
    await vault("vault.event.deposit.3", { id: "dep-1e59", account: 3, amount: 1e59 });
    await waitUntil(() => rejectsFor("vault").length > n0, 5000, "reject");
    assert.equal(rejectsFor("vault").at(-1).reason, "out_of_range");
    const h0 = (await request(nc, "risk.api.health")).data;
    await waitUntil(async () => (await request(nc, "risk.api.health")).data.epochs.last_closed_epoch > h0.epochs.last_closed_epoch, 5000, "next epoch");
    const p = await request(nc, "risk.api.proof", { account: 3 });
    assert.equal(p.headers?.get("Nats-Service-Error-Code") ?? null, null, JSON.stringify(p.data));
    assert.equal(p.data.leaf.account, "3");
  });

  test("non-finite money never enters: huge perp buys and a NaN-making trade are rejected", async () => {
    const before = await account(nc, 5);
    const n0 = rejectsFor("vault").length;
    await vault("vault.event.trade.5", { id: "perp-huge-1", account: 5, instrument: "BTC-PERP", quantity: 1.7e308, price: 100 });
    await vault("vault.event.trade.5", { id: "perp-huge-2", account: 5, instrument: "BTC-PERP", quantity: 1.7e308, price: 100 });
    await vault("vault.event.trade.5", { id: "opt-nan", account: 5, instrument: "BTC-C", quantity: 1e200, price: 1e200 });
    await waitUntil(() => rejectsFor("vault").length >= n0 + 3, 5000, "three rejects");
    assert.deepEqual(rejectsFor("vault").slice(n0).map((r) => r.reason), ["out_of_range", "out_of_range", "out_of_range"]);
    const after = await account(nc, 5);
    assert.equal(after.equity, before.equity);
    assert.ok(Number.isFinite(after.equity) && Number.isFinite(after.mm));
  });

  test("two deposits of 1e308 are rejected and a clean restart works", async () => {
    const n0 = rejectsFor("vault").length;
    await vault("vault.event.deposit.4", { id: "inf-1", account: 4, amount: 1e308 });
    await vault("vault.event.deposit.4", { id: "inf-2", account: 4, amount: 1e308 });
    await waitUntil(() => rejectsFor("vault").length >= n0 + 2, 5000, "two rejects");
    const eq4 = (await account(nc, 4)).equity;
    await serve.stop();
    serve = await startServe({ url: nats.url, dir, extra });
    assert.equal((await account(nc, 4)).equity, eq4);
  });

  test("an event id that is not UTF-8 in Nats-Msg-Id loses nothing: the body's id counts", async () => {
    const cash0 = (await account(nc, 3)).equity;
    // Raw HPUB: a header value that is not UTF-8, which no well-behaved client sends.
    const badId = Buffer.from([0x64, 0x65, 0x70, 0xff, 0xfe, 0x2d, 0x31]);
    await rawPublish(nats.url, "vault.event.deposit.3", Buffer.from(JSON.stringify({ id: "dep-utf8-ok", account: 3, amount: 7 })),
      { "Nats-Msg-Id": badId });
    await rawPublish(nats.url, "vault.event.deposit.3", Buffer.from(JSON.stringify({ account: 3, amount: 1000 })),
      { "Nats-Msg-Id": Buffer.concat([badId, Buffer.from("-2")]) });  // no body id: rejected (the body's id is the event's identity)
    await vault("vault.event.deposit.3", { id: "dep-after-1", account: 3, amount: 11 });
    await vault("vault.event.deposit.3", { id: "dep-after-2", account: 3, amount: 13 });
    await waitUntil(async () => Math.abs((await account(nc, 3)).equity - cash0 - 31) < 1e-9, 5000, "7 + 11 + 13 applied");
    const noId = rejectsFor("vault").find((r) => /event\.id/.test(r.detail));
    assert.ok(noId, JSON.stringify(rejectsFor("vault")));
    assert.equal(noId.reason, "invalid_event");
    // And after kill -9: still exactly once each.
    serve.kill9();
    await sleep(200);
    serve = await startServe({ url: nats.url, dir, extra });
    assert.ok(Math.abs((await account(nc, 3)).equity - cash0 - 31) < 1e-9);
  });

  test("a tick that is not UTF-8 is rejected on risk.reject.oracle", async () => {
    const n0 = rejectsFor("oracle").length;
    nc.publish("oracle.tick.BTC", Buffer.concat([Buffer.from('{"underlying":"BTC\xff'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]));
    await waitUntil(() => rejectsFor("oracle").length > n0, 5000, "reject");
    assert.equal(rejectsFor("oracle").at(-1).reason, "malformed");
  });

  test("a listing whose expiry has no smile is rejected; the book stays valued", async () => {
    const n0 = rejectsFor("vault").length;
    await vault("vault.event.instrument.BTC", { id: "BTC-NOSMILE", kind: "option", underlying: "BTC", expiry: EXPIRY + 7 * DAY, strike: 100, type: "P" }, "list-nosmile");
    await waitUntil(() => rejectsFor("vault").length > n0, 5000, "reject");
    const r = rejectsFor("vault").at(-1);
    assert.equal(r.reason, "invalid_event");
    assert.match(r.detail, /BTC-NOSMILE/);
    assert.equal((await request(nc, "risk.api.health")).data.status, "ok");
    assert.ok(Number.isFinite((await account(nc, 2)).equity));
  });

  test("the account API parses ids strictly", async () => {
    for (const bad of ["1abc", "-1", "", " 1", "18446744073709551616"]) {
      const r = await request(nc, "risk.api.account", { account: bad });
      assert.equal(r.headers?.get("Nats-Service-Error-Code"), "400", `account ${JSON.stringify(bad)}: ${JSON.stringify(r.data)}`);
    }
    for (const bad of [-1, 1.5, 1e30]) {
      const r = await request(nc, "risk.api.account", { account: bad });
      assert.equal(r.headers?.get("Nats-Service-Error-Code"), "400", `account ${bad}`);
    }
    assert.equal((await account(nc, "1")).account, 1);
  });

  test("120 unsigned 8 MB ticks are rejected as too_large without growing memory", async () => {
    const rss0 = rssMiB(serve.proc.pid);
    const n0 = rejectsFor("oracle").length;
    const big = Buffer.alloc(8 * 1024 * 1024 - 1024, 0x20);
    for (let k = 0; k < 120; k++) {
      nc.publish("oracle.tick.BTC", big);
      if (k % 10 === 9) await nc.flush();
    }
    await nc.flush();
    await waitUntil(() => rejectsFor("oracle").length >= n0 + 1, 10000, "rejects");
    await sleep(1000);
    const rs = rejectsFor("oracle").slice(n0);
    assert.ok(rs.every((r) => r.reason === "too_large"), JSON.stringify(rs.slice(0, 3)));
    const rss1 = rssMiB(serve.proc.pid);
    if (!SANITIZED) assert.ok(rss1 - rss0 < 100, `RSS grew from ${rss0} to ${rss1} MiB`);
    assert.equal((await request(nc, "risk.api.health")).data.status, "ok");
  });
});
