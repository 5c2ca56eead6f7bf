// A cluster (SPEC §9, issue #9): three clustered nats-servers with the shipped
// partition mapping, R3 streams, anvil, and two `vaultrisk serve --partitions 8`
// instances with their own signers. Partitions spread over both; each account is
// alerted once and answered by its owner; one state root per epoch covers every
// account and is anchored; kill -9 of an instance hands its partitions to the other,
// rebuilt from NATS alone; a clean join hands them back with their exact state.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Contract, JsonRpcProvider, Wallet, verifyTypedData } from "ethers";
import {
  ANVIL_KEYS, INTENT_KEY, INTENT_TYPES, artifact, cleanup, collect, deployAnchor, natsConnect, publishTick, request, runOut,
  signedTick, sleep, startAnvil, startNatsCluster, startServe, tempDir, waitUntil,
  writePerpBook,
} from "./harness.mjs";

const P = 8;
const ACCOUNTS = 2000;
const NOW_S = Math.floor(Date.now() / 1000);
const KEY_B = "0x0000000000000000000000000000000000000000000000000000000000000003";
const SIGNERS = [new Wallet(INTENT_KEY).address, new Wallet(KEY_B).address].map((a) => a.toLowerCase());

// nats-server's partition(P, token): FNV-1a 32 of the token, mod P.
function partitionOf(account) {
  let h = 2166136261;
  for (const c of Buffer.from(String(account))) h = Math.imul(h ^ c, 16777619) >>> 0;
  return h % P;
}

// BTC perps: account a is long or short (a % 7) - 3 (1 for 0) entered near 100, with
// cash that grows with a, so that a crash leaves a mix of statuses.
function writeBook(dir) {
  const rows = Array.from({ length: ACCOUNTS }, (_, i) => {
    const a = i + 1;
    return { account: a, cash: 50 + (a % 400), quantity: (a % 7) - 3 || 1, entry: 90 + (a % 20) };
  });
  return writePerpBook(dir, rows, { time: NOW_S });
}

const metric = (text, name) => {
  const m = text.match(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, "m"));
  return m ? Number(m[1]) : NaN;
};

describe("a cluster of two instances over a 3-node NATS JetStream cluster", () => {
  let dir, nats, anvil, nc, js, a, b, book, contract, provider, address, seq = 0;
  let alerts, intents, bot, botOut = "", botFrom = 0;
  const figures = {};
  const args = () => ["--partitions", String(P), "--replicas", "3", "--epoch-seconds", "2", "--lease-ms", "2000",
    "--rpc", anvil.url, "--contract", address, "--poster-key", join(dir, "poster.key")];

  const startA = () => startServe({ url: nats.url, dir: join(dir, "a"), book, market: join(book, "market.json"),
    extra: [...args(), "--instance", "a"] });
  const startB = () => startServe({ url: nats.url, dir: join(dir, "b"), book, market: join(book, "market.json"),
    extra: [...args(), "--instance", "b", "--signing-key", join(dir, "b.key")] });
  const named = (what, p) => p.catch((e) => { throw new Error(`${what}: ${e.message} (t=${Date.now()})`); });
  const health = async () => (await named("health", request(nc, "risk.api.health"))).data;
  // A 503 (the partition is between owners) is retried, as the docs tell clients to.
  const account = async (id) => {
    for (let i = 0; ; i++) {
      const r = await named(`account ${id}`, request(nc, "risk.api.account", { account: id }));
      if (r.headers?.get("Nats-Service-Error-Code") !== "503" || i >= 40) return r.data;
      await sleep(250);
    }
  };
  // A request sent just as an instance dies can go to its last subscription and be
  // lost (clients retry): while waiting for a takeover, such a loss is "not yet".
  const healthOrNull = () => health().catch(() => null);
  const owned = (h, name) => !h ? [] : Object.entries(h.owners).filter(([, o]) => o === name).map(([k]) => Number(k));
  async function tick(spot) {
    await publishTick(nc, "BTC", await signedTick("BTC", ++seq, spot));
  }
  const quiet = async (list, ms = 1500) => {  // until `ms` pass with nothing new
    let n = -1;
    while (n !== list.length) {
      n = list.length;
      await sleep(ms);
    }
  };

  before(async () => {
    dir = tempDir();
    mkdirSync(join(dir, "a"));
    mkdirSync(join(dir, "b"));
    book = writeBook(dir);
    writeFileSync(join(dir, "poster.key"), ANVIL_KEYS[0] + "\n");
    writeFileSync(join(dir, "b.key"), KEY_B + "\n");
    nats = await startNatsCluster(dir, 3);
    anvil = await startAnvil();
    address = await deployAnchor(anvil.url, join(dir, "poster.key"));
    provider = new JsonRpcProvider(anvil.url, undefined, { staticNetwork: true, cacheTimeout: -1 });
    contract = new Contract(address, artifact().abi, provider);
    a = await startA();
    b = await startB();
    nc = await natsConnect(nats.url);
    js = nc.jetstream();
    alerts = collect(nc, "risk.alert.>");
    intents = collect(nc, "sequencer.intent.liquidation");
    // The example liquidator bot, trusting both instances' signers.
    bot = spawn(process.execPath, [new URL("../../examples/liquidator-bot.mjs", import.meta.url).pathname, "--nats", nats.url,
      "--signer", SIGNERS.join(","), "--contract", address], { stdio: ["ignore", "pipe", "inherit"] });
    bot.stdout.on("data", (d) => { botOut += d; });
    await waitUntil(() => botOut.includes("following stream INTENTS"), 20000, "the bot");
    await sleep(1000);
    botFrom = intents.out.length;  // the bot follows from here on
  });

  after(async () => {
    alerts?.stop();
    intents?.stop();
    bot?.kill();
    await nc?.close();
    await Promise.allSettled([a?.stop(), b?.stop()]);
    provider?.destroy();
    await anvil?.stop();
    nats?.stop();
    if (Object.keys(figures).length) console.log("cluster figures:", JSON.stringify(figures));
    if (process.env.VR_CLUSTER_LOGS) for (const [n, p] of [["a", a], ["b", b]]) if (p) writeFileSync(`${process.env.VR_CLUSTER_LOGS}.${n}`, p.log());
    cleanup(dir);
  });

  test("the 8 partitions spread over both instances, each owned by exactly one, on R3 streams", async () => {
    await waitUntil(async () => {
      const h = await health();
      return owned(h, "a").length === 4 && owned(h, "b").length === 4;
    }, 30000, "4 partitions each");
    const jsm = await nc.jetstreamManager();
    for (const s of ["VAULT", "INTENTS", "EPOCHS", "EPOCH_PARTS", "VAULTRISK_SNAP"])
      assert.equal((await jsm.streams.info(s)).config.num_replicas, 3, s);
    // Deposits go into the partition the server's mapping gives them.
    const pa = await js.publish("vault.event.deposit.7", new TextEncoder().encode(JSON.stringify({ id: "d-7", account: 7, amount: 1 })), { msgID: "d-7" });
    const m = await jsm.streams.getMessage("VAULT", { seq: pa.seq });
    assert.equal(m.subject, `vault.event.deposit.7.${partitionOf(7)}`);
  });

  test("a crash alerts each account once, from its partition's owner; queries reach the owner; intents verify", async () => {
    await waitUntil(async () => (await account(7)).equity === 57 + 1 - 3 * (100 - 97), 10000, "deposit applied");
    await tick(70);
    await waitUntil(() => alerts.out.length > 0, 15000, "alerts");
    await quiet(alerts.out);
    const byAccount = new Map();
    for (const x of alerts.out) byAccount.set(x.data.account, [...(byAccount.get(x.data.account) ?? []), x.data.status]);
    // Every alert is a status change from the one before (healthy at first): none repeated.
    const chain = new Map();
    for (const x of alerts.out) {
      const prev = chain.get(x.data.account) ?? x.data.prev_status;
      assert.equal(x.data.prev_status, prev, `account ${x.data.account}: ${JSON.stringify(x.data)}`);
      assert.notEqual(x.data.status, prev);
      chain.set(x.data.account, x.data.status);
    }
    let unhealthy = 0;
    for (let id = 1; id <= ACCOUNTS; id += 5) {  // every 5th account (all position sizes), through the router
      const r = await account(id);
      assert.equal(r.account, id);
      if (r.status !== "healthy") ++unhealthy;
      assert.equal(chain.get(id) ?? "healthy", r.status, `account ${id}: its last alert is its status`);
    }
    assert.ok(unhealthy >= 10, `${unhealthy} sampled accounts changed status`);
    await quiet(intents.out, 1000);
    assert.ok(intents.out.length > 0);
    const { chainId } = await provider.getNetwork();
    const domain = { name: "vaultrisk", version: "1", chainId, verifyingContract: address };
    const nonces = new Map();
    for (const { data } of intents.out) {
      const signer = verifyTypedData(domain, INTENT_TYPES, data.intent, data.signature).toLowerCase();
      assert.equal(signer, data.signer.toLowerCase());
      assert.ok(SIGNERS.includes(signer));
      const key = `${signer}:${data.intent.nonce}`;
      assert.ok(!nonces.has(key), `nonce ${key} repeated`);
      nonces.set(key, true);
      assert.ok(byAccount.get(Number(data.intent.account))?.includes("liquidatable"));
    }
    assert.equal(new Set(intents.out.map((x) => x.data.signer.toLowerCase())).size, 2, "both instances signed");
    // The example bot verifies every one of them (digest, signer, nonce per signer).
    const verified = () => (botOut.match(/VERIFIED/g) ?? []).length;
    const missing = () => intents.out.slice(botFrom).filter(({ data }) => !botOut.includes(`nonce ${data.intent.nonce} `))
      .map(({ data }) => `${data.intent.account}/${data.intent.nonce}/${data.signer.slice(0, 8)}/${data.digest.slice(0, 10)}`);
    await waitUntil(() => verified() >= intents.out.length - botFrom, 15000,
      `the bot verifying every intent (${verified()} of ${intents.out.length - botFrom}; missing ${missing()}); bot: ${botOut.split("\n").filter((l) => l.startsWith("intent")).slice(0, 80).join(" | ")}`);
    assert.doesNotMatch(botOut, /REFUSED/);
  });

  test("one state root per epoch covers every account of every partition, anchored, verified by verify-epoch", async () => {
    await waitUntil(async () => (await contract.lastEpoch()) > 0n, 30000, "an anchored epoch");
    const epoch = Number(await contract.lastEpoch());
    const onChain = await contract.anchors(epoch);
    assert.equal(Number(onChain.accountCount), ACCOUNTS);
    const v = await runOut(["verify-epoch", "--epoch", String(epoch), "--nats", nats.url, "--rpc", anvil.url, "--contract", address]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    // The anchorer's latest closed epoch (the anchorer may have changed since `epoch`).
    const p = (await request(nc, "risk.api.proof", { account: 1234 })).data;
    assert.ok(p.leafHash, JSON.stringify(p));
    await waitUntil(async () => (await contract.lastEpoch()) >= BigInt(p.epoch), 30000, `epoch ${p.epoch} anchored`);
    assert.equal(await contract.verifyAccount(p.epoch, p.leafHash, p.proof), true);
  });

  test("kill -9 of an instance: the other takes its partitions over from NATS alone, state exact", async () => {
    const before = await health();
    const mine = owned(before, "a");
    const victim = [...Array(ACCOUNTS).keys()].map((i) => i + 1).find((id) => mine.includes(partitionOf(id)));
    const e0 = (await account(victim)).equity;
    // A deposit the victim's owner applies just before it dies: after any snapshot, so replayed.
    await js.publish(`vault.event.deposit.${victim}`, new TextEncoder().encode(JSON.stringify({ id: "d-v", account: victim, amount: 1000 })), { msgID: "d-v" });
    await waitUntil(async () => (await account(victim)).equity === e0 + 1000, 10000, "deposit applied by a");
    const killed = Date.now();
    a.kill9();
    await waitUntil(async () => owned(await healthOrNull(), "b").length === P, 30000, "b owns every partition");
    figures.takeover_all_partitions_ms = Date.now() - killed;
    assert.equal((await account(victim)).equity, e0 + 1000, "the takeover rebuilt the deposit");
    const n = alerts.out.length;
    await tick(50);  // alerts flow again from the taken-over partitions
    await waitUntil(() => alerts.out.slice(n).some((x) => mine.includes(partitionOf(x.data.account))), 15000, "alerts from taken-over partitions");
    figures.kill_to_alert_ms = Date.now() - killed;
    await quiet(alerts.out);
    // Repeats only in the takeover window, and counted.
    const seen = new Map();
    let dups = 0;
    for (const x of alerts.out) {
      const k = `${x.data.account}:${x.data.prev_status}>${x.data.status}`;
      if (seen.has(k)) ++dups;
      seen.set(k, true);
    }
    const m = await b.metrics();
    figures.duplicates = dups;
    figures.takeover_alerts_metric = metric(m, "vaultrisk_takeover_alerts_total");
    assert.ok(dups <= figures.takeover_alerts_metric, `${dups} duplicates, metric ${figures.takeover_alerts_metric}`);
    assert.ok(metric(m, "vaultrisk_partition_takeovers_total") >= 4);
    await quiet(intents.out, 1000);
    const nonces = new Set(intents.out.map((x) => `${x.data.signer.toLowerCase()}:${x.data.intent.nonce}`));
    assert.equal(nonces.size, intents.out.length, "no nonce repeats for a signer");
    await waitUntil(() => (botOut.match(/VERIFIED/g) ?? []).length >= intents.out.length - botFrom, 15000, "the bot verifying every intent");
    assert.doesNotMatch(botOut, /REFUSED/, "the bot verifies every intent across the failover");
    // Epochs go on being anchored after the failover, in order.
    const last = await contract.lastEpoch();
    await waitUntil(async () => (await contract.lastEpoch()) > last, 40000, "an epoch anchored after the failover");
  });

  test("an instance that joins gets its fair share handed over with the exact state: no alert repeated", async () => {
    a = await startA();
    await waitUntil(async () => {
      const h = await health();
      return owned(h, "a").length === 4 && owned(h, "b").length === 4;
    }, 60000, "4 partitions each again");
    const n = alerts.out.length;
    await sleep(3000);
    assert.equal(alerts.out.length, n, "a handover with the final state repeats no alert");
    assert.equal(metric(await a.metrics(), "vaultrisk_takeover_alerts_total"), 0);
    // And it serves: a deposit in one of its partitions shows in the account.
    const mine = owned(await health(), "a");
    const id = [...Array(ACCOUNTS).keys()].map((i) => i + 1).find((x) => mine.includes(partitionOf(x)) && x !== 7);
    const e0 = (await account(id)).equity;
    await js.publish(`vault.event.deposit.${id}`, new TextEncoder().encode(JSON.stringify({ id: "d-j", account: id, amount: 5 })), { msgID: "d-j" });
    await waitUntil(async () => (await account(id)).equity === e0 + 5, 10000, "deposit applied after the handover");
  });
});
