// Least privilege (SPEC §9): the shipped NATS users (deploy/nats/users.conf), one per
// role, on a real nats-server. Every role does its job with only its own rights, a
// cluster instance (serve --partitions) included; and no role but the vault indexer
// can publish a vault event, which would credit an account with nothing signed.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  cleanup, natsConnect, publishTick, request, signedTick, sleep, startNatsCluster, startServe, tempDir, waitUntil,
  writePerpBook,
} from "./harness.mjs";

const PASSWORDS = { oracle: "o-pw", indexer: "i-pw", vaultrisk: "v-pw", liquidator: "l-pw", user: "u-pw" };
for (const [u, p] of Object.entries(PASSWORDS)) process.env[`VR_${u.toUpperCase()}_PASSWORD`] = p;
const NOW_S = Math.floor(Date.now() / 1000);

function writeBook(dir) {
  const rows = Array.from({ length: 50 }, (_, i) => ({ account: i + 1, cash: 21 + i, quantity: 1, entry: 100 }));
  return writePerpBook(dir, rows, { time: NOW_S });
}

// A connection as `user`, recording the permission errors the server reports.
async function as(nats, user) {
  const url = nats.url.replace("nats://", `nats://${user}:${PASSWORDS[user]}@`);
  const nc = await natsConnect(nats.url, { user, pass: PASSWORDS[user] });
  const errors = [];
  (async () => {
    for await (const s of nc.status()) if (s.type === "error") errors.push(String(s.data));
  })();
  return { nc, url, errors };
}

describe("one NATS user per role, each with only what it needs", () => {
  let dir, nats, serve, oracle, indexer, liquidator, user, vr, alerts = [];
  const enc = (o) => new TextEncoder().encode(JSON.stringify(o));
  const equity = async (id) => (await request(user.nc, "risk.api.account", { account: id })).data.equity;
  const vaultCount = async () => (await (await indexer.nc.jetstreamManager()).streams.info("VAULT")).state.messages;

  before(async () => {
    dir = tempDir();
    const book = writeBook(dir);
    nats = await startNatsCluster(dir, 1, { extra: "include ./users.conf" });
    const vrUrl = nats.url.replace("nats://", `nats://vaultrisk:${PASSWORDS.vaultrisk}@`);
    mkdirSync(join(dir, "s"));
    serve = await startServe({ url: vrUrl, dir: join(dir, "s"), book, market: join(book, "market.json"),
      extra: ["--partitions", "8", "--instance", "r1"] });  // P as in the shipped mapping
    [oracle, indexer, liquidator, user, vr] = await Promise.all(["oracle", "indexer", "liquidator", "user", "vaultrisk"].map((u) => as(nats, u)));
    const sub = liquidator.nc.subscribe("risk.alert.>");
    (async () => { for await (const m of sub) alerts.push(JSON.parse(new TextDecoder().decode(m.data))); })();
    await waitUntil(async () => {
      try {
        return Object.values((await request(user.nc, "risk.api.health")).data.owners).every((o) => o === "r1");
      } catch { return false; }
    }, 20000, "every partition owned");
  });

  after(async () => {
    for (const c of [oracle, indexer, liquidator, user, vr]) await c?.nc.close();
    await serve?.stop();
    if (process.env.VR_CLUSTER_LOGS) writeFileSync(`${process.env.VR_CLUSTER_LOGS}.roles`, serve.log() + nats.nodes[0].log());
    nats?.stop();
    cleanup(dir);
  });

  test("each role does its job: ticks, vault events, alerts, intents, queries; serve as a cluster instance", async () => {
    const e0 = await equity(3);
    const js = indexer.nc.jetstream();
    await js.publish("vault.event.deposit.3", enc({ id: "dep-3", account: 3, amount: 7 }), { msgID: "dep-3" });
    await waitUntil(async () => (await equity(3)) === e0 + 7, 10000, "the indexer's deposit applied");
    await publishTick(oracle.nc, "BTC", await signedTick("BTC", 1, 60));
    await waitUntil(() => alerts.length > 0, 10000, "alerts to the liquidator");
    // The liquidator reads the signed intents from stream INTENTS.
    const jsm = await liquidator.nc.jetstreamManager();
    await waitUntil(async () => (await jsm.streams.info("INTENTS")).state.messages > 0, 10000, "intents");
    const m = await jsm.streams.getMessage("INTENTS", { seq: 1 });
    assert.ok(JSON.parse(new TextDecoder().decode(m.data)).signature.startsWith("0x"));
    for (const c of [oracle, indexer, liquidator, user]) assert.deepEqual(c.errors, [], "no permission errors doing its job");
  });

  test("no role but the indexer can publish a vault event; none can forge ticks or read what is not theirs", async () => {
    // The tick of the test before reaches the 8 partitions one by one, and account 5's
    // may value it after the first alert that test waited for: read its equity once
    // it has settled.
    let e0 = await equity(5);
    await waitUntil(async () => { await sleep(200); const e = await equity(5); const same = e === e0; e0 = e; return same; }, 10000, "account 5 settled");
    const n0 = await vaultCount();
    for (const c of [oracle, liquidator, user, vr]) {
      c.nc.publish("vault.event.deposit.5", enc({ id: `forged-${c.url.length}-${Math.random()}`, account: 5, amount: 1e6 }));
      await c.nc.flush();
    }
    await sleep(1000);
    assert.equal(await vaultCount(), n0, "nothing reached stream VAULT");
    assert.equal(await equity(5), e0, "the account was not credited");
    for (const c of [oracle, liquidator, user, vr])
      await waitUntil(() => c.errors.some((e) => /PERMISSIONS_VIOLATION|Permissions Violation/i.test(e)), 5000, "the server refused it");
    // Ticks only from the oracle's user; alerts only to the liquidator's.
    const before = liquidator.errors.length;
    liquidator.nc.publish("oracle.tick.BTC", enc({}));
    await liquidator.nc.flush();
    await waitUntil(() => liquidator.errors.length > before, 5000, "a forged tick refused");
    const sub = user.nc.subscribe("risk.alert.>");
    await user.nc.flush();
    await waitUntil(() => user.errors.some((e) => /PERMISSIONS_VIOLATION|Permissions Violation/i.test(e) ) , 5000, "a user's subscription to alerts refused");
    sub.unsubscribe();
  });
});
