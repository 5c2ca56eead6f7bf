// Epochs end to end: nats-server + anvil + vaultrisk serve. Roots anchored in
// order, proofs from the API and the CLI verified by the contract, the published
// leaves rebuilt by OpenZeppelin's implementation, intents verified on-chain, and a
// chain outage (with a kill -9 in the middle) survived without skipping an epoch.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Contract, JsonRpcProvider, Wallet, ZeroHash } from "ethers";
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import {
  ANVIL_KEYS, INTENT_SIGNER, STATE_LEAF_TYPES, artifact, deployAnchor, cleanup, natsConnect, publishTick, request, runOut, signedTick, sleep,
  startAnvil, startNats, startServe, tempDir, waitUntil,
} from "./harness.mjs";

const LEAF = STATE_LEAF_TYPES;
const NOW_S = Math.floor(Date.now() / 1000);
const ACCOUNTS = 200;

// BTC perps only: account a holds (a % 7) - 3 perps (1 when that is 0) entered near 100.
// Account 1 is long 10 at 100 on 300 cash: liquidatable below ~84.75.
function writeBook(dir) {
  const book = join(dir, "book");
  mkdirSync(book, { recursive: true });
  writeFileSync(join(book, "instruments.csv"), "id,kind,underlying,expiry,strike,type\nBTC-PERP,perp,BTC,,,\n");
  let acc = "account,cash\n1,300\n", pos = "account,instrument,quantity,entry_price\n1,BTC-PERP,10,100\n";
  for (let a = 2; a <= ACCOUNTS; a++) {
    acc += `${a},${200 + 13 * a}\n`;
    pos += `${a},BTC-PERP,${(a % 7) - 3 || 1},${90 + (a % 20)}\n`;
  }
  writeFileSync(join(book, "accounts.csv"), acc);
  writeFileSync(join(book, "positions.csv"), pos);
  writeFileSync(join(book, "market.json"), JSON.stringify({ time: NOW_S, underlyings: { BTC: { spot: 100, expiries: [] } } }));
  return book;
}

function summary(dir, epoch) {
  const p = join(dir, "state", "epochs", `${epoch}.json`);
  return existsSync(p) ? JSON.parse(readFileSync(p, "utf8")) : null;
}

describe("epochs anchored on a real chain", () => {
  let dir, nats, anvil, nc, serve, provider, contract, address, book, serveArgs, seq = 0;
  const posterKey = () => join(dir, "poster.key");

  async function tick(spot) {
    await publishTick(nc, "BTC", await signedTick("BTC", ++seq, spot));
    await waitUntil(async () => (await request(nc, "risk.api.health")).data.ticks.BTC === seq, 5000, `tick ${spot}`);
  }

  before(async () => {
    dir = tempDir();
    book = writeBook(dir);
    writeFileSync(posterKey(), ANVIL_KEYS[0] + "\n");
    nats = await startNats(dir);
    anvil = await startAnvil({ state: join(dir, "anvil-state.json") });
    address = await deployAnchor(anvil.url, posterKey());
    provider = new JsonRpcProvider(anvil.url, undefined, { staticNetwork: true, cacheTimeout: -1 });
    contract = new Contract(address, artifact().abi, provider);
    serveArgs = ["--rpc", anvil.url, "--contract", address, "--poster-key", posterKey(), "--epoch-seconds", "1"];
    serve = await startServe({ url: nats.url, dir, book, market: join(book, "market.json"), extra: serveArgs });
    nc = await natsConnect(nats.url);
    await tick(80);  // account 1 becomes liquidatable: an intent in this epoch
  });

  after(async () => {
    await nc?.close();
    await serve?.stop();
    provider?.destroy();
    await anvil?.stop();
    nats?.stop();
    cleanup(dir);
  });

  test("closes an epoch every second and anchors each, in order, with the roots it persisted", async () => {
    await waitUntil(async () => (await contract.lastEpoch()) >= 3n, 20000, "three epochs anchored");
    const events = await contract.queryFilter(contract.filters.Anchored(), 0);
    const epochs = events.map((e) => Number(e.args.epoch));
    assert.deepEqual(epochs, epochs.map((_, i) => i + 1), "epochs 1, 2, 3, ... with none skipped");
    // The receipt is recorded in the summary just after the chain has the epoch.
    await waitUntil(async () => events.every((e) => summary(dir, Number(e.args.epoch))?.anchor), 5000, "receipts recorded");
    for (const e of events) {
      const s = summary(dir, Number(e.args.epoch));
      assert.equal(e.args.stateRoot, s.state_root);
      assert.equal(e.args.intentsRoot, s.intents_root);
      assert.equal(Number(e.args.accountCount), ACCOUNTS);
      assert.equal(s.anchor.tx, e.transactionHash);
    }
    // The epoch with account 1's intent has an intents root; epochs without intents have zero.
    const withIntents = events.filter((e) => e.args.intentsRoot !== ZeroHash);
    assert.ok(withIntents.length >= 1);
    // The anchorer records the receipt in the summary first, then counts the epoch
    // as anchored in health: wait for both.
    await waitUntil(async () => (await request(nc, "risk.api.health")).data.epochs.last_anchored_epoch >= 3, 5000,
      "health counts the anchored epochs");
  });

  test("risk.api.proof and `vaultrisk proof` give the same proof, and the contract verifies it", async () => {
    const epoch = 2;
    const random = Array.from({ length: 6 }, () => 1 + Math.floor(Math.random() * ACCOUNTS));
    for (const account of [1, 2, ACCOUNTS, ...random]) {
      const api = (await request(nc, "risk.api.proof", { account, epoch })).data;
      assert.equal(api.epoch, epoch);
      assert.equal(await contract.verifyAccount(epoch, api.leafHash, api.proof), true, `account ${account}`);
      const l = api.leaf;
      assert.equal(await contract.verifyAccountState(epoch, l.account, l.equity, l.mm, l.im, l.status, api.proof), true);
      assert.equal(l.status, account === 1 ? 2 : l.status);
      const cli = await runOut(["proof", "--state-dir", join(dir, "state"), "--account", String(account), "--epoch", String(epoch),
        "--rpc", anvil.url, "--contract", address]);
      assert.equal(cli.code, 0, cli.stderr);
      const p = JSON.parse(cli.stdout);
      assert.equal(p.verifiedOnChain, true);
      assert.deepEqual([p.leaf, p.leafHash, p.proof, p.stateRoot], [api.leaf, api.leafHash, api.proof, api.stateRoot]);
    }
    // The latest closed epoch by default; errors name the problem.
    const latest = (await request(nc, "risk.api.proof", { account: 5 })).data;
    assert.ok(latest.epoch >= epoch);
    const unknown = await request(nc, "risk.api.proof", { account: 999999, epoch });
    assert.equal(unknown.headers.get("Nats-Service-Error-Code"), "404");
    const open = await request(nc, "risk.api.proof", { account: 1, epoch: 1000000 });
    assert.equal(open.headers.get("Nats-Service-Error-Code"), "404");
    assert.match(open.data.error, /not closed yet/);
    const bad = await request(nc, "risk.api.proof", { account: "x" });
    assert.equal(bad.headers.get("Nats-Service-Error-Code"), "400");
  });

  test("the leaves published to stream EPOCHS rebuild the anchored root with OpenZeppelin's implementation", async () => {
    const jsm = await nc.jetstreamManager();
    const get = async (subj) => JSON.parse(new TextDecoder().decode((await jsm.streams.getMessage("EPOCHS", { last_by_subj: subj })).data));
    for (const epoch of [1, 2, 3]) {
      const s = await get(`vaultrisk.epoch.${epoch}.summary`);
      const rows = [];
      for (let k = 0; k < s.chunks; k++) rows.push(...(await get(`vaultrisk.epoch.${epoch}.leaves.${k}`)).leaves);
      assert.equal(rows.length, ACCOUNTS);
      const tree = StandardMerkleTree.of(rows.map((r) => [epoch, ...r]), LEAF);
      const onChain = await contract.anchors(epoch);
      assert.equal(tree.root, onChain.stateRoot);
      const digests = [];
      for (let k = 0; k < s.intent_chunks; k++) digests.push(...(await get(`vaultrisk.epoch.${epoch}.intents.${k}`)).intents);
      assert.equal(digests.length, s.intent_count);
      const intents = digests.length ? StandardMerkleTree.of(digests.map((d) => [d]), ["bytes32"]).root : ZeroHash;
      assert.equal(intents, onChain.intentsRoot);
      const v = await runOut(["verify-epoch", "--epoch", String(epoch), "--nats", nats.url, "--rpc", anvil.url, "--contract", address]);
      assert.equal(v.code, 0, v.stdout + v.stderr);
      assert.match(v.stdout, /match the published summary/);
    }
  });

  test("intents verify on-chain through verifyIntent, and are in their epoch's anchored intents root", async () => {
    const jsm = await nc.jetstreamManager();
    const m = await jsm.streams.getMessage("INTENTS", { seq: 1 });
    const body = JSON.parse(new TextDecoder().decode(m.data));
    const i = body.intent;
    const tuple = [i.account, i.nonce, i.deadline, i.epoch, i.equity, i.maintenanceMargin, i.marketDigest];
    assert.equal((await contract.verifyIntent(tuple, body.signature)).toLowerCase(), INTENT_SIGNER);
    assert.equal(await contract.intentDigest(tuple), body.digest);
    await waitUntil(async () => (await contract.lastEpoch()) >= BigInt(i.epoch), 10000, "the intent's epoch anchored");
    const v = await runOut(["verify-intent", "--intent", "-", "--rpc", anvil.url, "--contract", address, "--state-dir", join(dir, "state")],
      JSON.stringify(body));
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /included in epoch \d+'s anchored intents root: yes/);
    const bySeq = await runOut(["verify-intent", "--seq", "1", "--nats", nats.url, "--rpc", anvil.url, "--contract", address]);
    assert.equal(bySeq.code, 0, bySeq.stdout + bySeq.stderr);
    // A tampered intent is refused.
    const forged = { ...body, intent: { ...i, equity: String(BigInt(i.equity) + 1n) } };
    const f = await runOut(["verify-intent", "--intent", "-", "--rpc", anvil.url, "--contract", address], JSON.stringify(forged));
    assert.equal(f.code, 1);
  });

  test("a withdrawal alone (no tick) moves an account to liquidatable, and the next epoch commits it", async () => {
    const fullRevaluations = async () => {
      const text = await (await fetch(`http://127.0.0.1:${serve.metricsPort}/metrics`)).text();
      return Number(text.match(/vaultrisk_revaluation_seconds_count\{kind="full"\} (\d+)/)[1]);
    };
    const before = (await request(nc, "risk.api.account", { account: 2 })).data;
    assert.equal(before.status, "healthy");
    const full0 = await fullRevaluations();
    const alerts = nc.subscribe("risk.alert.*.2");
    const js = nc.jetstream();
    const enc = (o) => new TextEncoder().encode(JSON.stringify(o));
    await js.publish("vault.event.withdraw.2", enc({ id: "w-2", account: 2, amount: before.equity - before.mm / 2 }), { msgID: "w-2" });
    const alert = await (async () => { for await (const m of alerts) return JSON.parse(new TextDecoder().decode(m.data)); })();
    assert.equal(alert.status, "liquidatable");
    assert.ok(Math.abs(alert.equity - before.mm / 2) < 1e-9, `equity ${alert.equity}`);
    const after = (await request(nc, "risk.api.account", { account: 2 })).data;
    assert.equal(after.mm, before.mm);  // only cash moved: the positions' margin is unchanged
    assert.equal(await fullRevaluations(), full0, "a cash-only batch updates the accounts in place: no full revaluation");
    const epoch = (await request(nc, "risk.api.health")).data.epoch;
    await waitUntil(async () => (await request(nc, "risk.api.health")).data.epochs.last_closed_epoch >= epoch, 5000, "the epoch closed");
    const p = (await request(nc, "risk.api.proof", { account: 2, epoch })).data;
    assert.equal(p.leaf.status, 2);
  });

  test("chain down: epochs queue, survive kill -9, and are anchored in order once it returns", async () => {
    const before = Number(await contract.lastEpoch());
    const port = anvil.port;
    await anvil.stop();  // dumps its state
    // Epochs keep closing, with roots persisted, but cannot be anchored.
    await waitUntil(async () => (await request(nc, "risk.api.health")).data.epochs.epochs_pending >= 2, 15000, "epochs queued");
    await tick(78);
    serve.kill9();
    await sleep(300);
    serve = await startServe({ url: nats.url, dir, market: join(book, "market.json"), extra: serveArgs });
    await waitUntil(async () => (await request(nc, "risk.api.health")).data.epochs.epochs_pending >= 3, 15000, "still queued after restart");
    const health = (await request(nc, "risk.api.health")).data.epochs;
    const closed = health.last_closed_epoch;
    // (Epoch `before` itself may be queued too: mined just as the chain stopped, before
    // its receipt was read. The service then finds it on-chain and records it.)
    assert.ok(closed >= before + 2, `closed ${closed}, anchored before the stop ${before}: ${JSON.stringify(health)}`);
    // Their roots are persisted (and published) without waiting for the chain.
    await waitUntil(async () => summary(dir, closed) !== null, 5000, "roots of the queued epochs");
    for (let e = before + 1; e <= closed; e++) assert.equal(summary(dir, e).anchor, null, `epoch ${e} not anchored while down`);
    anvil = await startAnvil({ port, state: join(dir, "anvil-state.json") });
    provider.destroy();
    provider = new JsonRpcProvider(anvil.url, undefined, { staticNetwork: true, cacheTimeout: -1 });
    contract = new Contract(address, artifact().abi, provider);
    assert.equal(Number(await contract.lastEpoch()), before, "the chain came back with its state");
    await waitUntil(async () => Number(await contract.lastEpoch()) >= closed, 30000, "the queue anchored");
    const events = await contract.queryFilter(contract.filters.Anchored(), 0);
    const epochs = events.map((e) => Number(e.args.epoch));
    assert.deepEqual(epochs, epochs.map((_, i) => i + 1), "in order, none skipped, none twice");
    for (const e of events) assert.equal(e.args.stateRoot, summary(dir, Number(e.args.epoch)).state_root);
    assert.match(serve.log(), /closed epoch\(s\) from before the restart still to publish or anchor/);
  });
});

describe("bad input to the on-chain commands", () => {
  test("is named, with exit code 1, and nothing sent", async () => {
    const dir = tempDir();
    try {
      writeFileSync(join(dir, "k.key"), ANVIL_KEYS[0] + "\n");
      const rpcDown = await runOut(["deploy-anchor", "--rpc", "http://127.0.0.1:1", "--key", join(dir, "k.key")]);
      assert.equal(rpcDown.code, 1);
      assert.match(rpcDown.stderr, /JSON-RPC http:\/\/127\.0\.0\.1:1: .*after 3 attempts/);
      const noState = await runOut(["proof", "--state-dir", join(dir, "nope"), "--account", "1"]);
      assert.equal(noState.code, 1);
      assert.match(noState.stderr, /nope: no epochs\/ here/);
      mkdirSync(join(dir, "state", "epochs"), { recursive: true });
      const noEpoch = await runOut(["proof", "--state-dir", join(dir, "state"), "--account", "1", "--epoch", "4"]);
      assert.equal(noEpoch.code, 1);
      assert.match(noEpoch.stderr, /epochs\/4\.capture: no such epoch/);
      writeFileSync(join(dir, "state", "epochs", "4.capture"), "VREPOCH1 truncated");
      const damaged = await runOut(["proof", "--state-dir", join(dir, "state"), "--account", "1", "--epoch", "4"]);
      assert.equal(damaged.code, 1);
      assert.match(damaged.stderr, /4\.capture: truncated epoch capture/);
      const usage = await runOut(["proof", "--state-dir", join(dir, "state")]);
      assert.equal(usage.code, 2);
      writeFileSync(join(dir, "intent.json"), JSON.stringify({ intent: { account: "1" }, digest: "0x00", signature: "0x00", signer: "0x00" }));
      const badIntent = await runOut(["verify-intent", "--intent", join(dir, "intent.json"), "--rpc", "http://127.0.0.1:1",
        "--contract", "0x5fbdb2315678afecb367f032d93f642f64180aa3"]);
      assert.equal(badIntent.code, 1);
      assert.match(badIntent.stderr, /intent\.nonce: missing or not a string/);
      const notJson = await runOut(["verify-intent", "--intent", "-", "--rpc", "http://127.0.0.1:1", "--contract", "0x5fbdb2315678afecb367f032d93f642f64180aa3"], "{");
      assert.equal(notJson.code, 1);
      assert.match(notJson.stderr, /-: not JSON/);
    } finally {
      cleanup(dir);
    }
  });
});

describe("a service that may not anchor", () => {
  test("a poster key that is not the contract's poster anchors nothing, says why, and keeps the epochs queued", async () => {
    const dir = tempDir();
    const book = writeBook(dir);
    writeFileSync(join(dir, "deployer.key"), ANVIL_KEYS[0] + "\n");
    writeFileSync(join(dir, "other.key"), ANVIL_KEYS[1] + "\n");
    const nats = await startNats(dir);
    const anvil = await startAnvil();
    let serve;
    try {
      const address = await deployAnchor(anvil.url, join(dir, "deployer.key"));
      serve = await startServe({ url: nats.url, dir, book, market: join(book, "market.json"),
        extra: ["--rpc", anvil.url, "--contract", address, "--poster-key", join(dir, "other.key"), "--epoch-seconds", "1"] });
      const nc = await natsConnect(nats.url);
      await waitUntil(async () => (await request(nc, "risk.api.health")).data.epochs.epochs_pending >= 2, 15000, "epochs queued");
      const h = (await request(nc, "risk.api.health")).data.epochs;
      assert.match(h.last_error, /the contract's poster is 0xf39f.*not this service's 0x7099/i);
      const provider = new JsonRpcProvider(anvil.url, undefined, { staticNetwork: true });
      assert.equal(await new Contract(address, artifact().abi, provider).lastEpoch(), 0n);
      provider.destroy();
      await nc.close();
    } finally {
      await serve?.stop();
      await anvil.stop();
      nats.stop();
      cleanup(dir);
    }
  });
});

describe("an anchor sent just before a crash", () => {
  test("is found on-chain after the restart, recorded, and not sent twice; other roots stop anchoring", async () => {
    const dir = tempDir();
    const book = writeBook(dir);
    writeFileSync(join(dir, "poster.key"), ANVIL_KEYS[0] + "\n");
    const nats = await startNats(dir);
    let anvil = await startAnvil({ state: join(dir, "anvil-state.json") });
    let serve;
    try {
      const address = await deployAnchor(anvil.url, join(dir, "poster.key"));
      const args = ["--rpc", anvil.url, "--contract", address, "--poster-key", join(dir, "poster.key"), "--epoch-seconds", "1"];
      serve = await startServe({ url: nats.url, dir, book, market: join(book, "market.json"), extra: args });
      const nc = await natsConnect(nats.url);
      const health = async () => (await request(nc, "risk.api.health")).data.epochs;
      await waitUntil(async () => (await health()).last_anchored_epoch >= 1, 15000, "epoch 1 anchored");
      // The chain goes away; epochs queue with their roots persisted; the service dies.
      const port = anvil.port;
      await anvil.stop();
      await waitUntil(async () => (await health()).epochs_pending >= 3, 15000, "epochs queued");
      const closed = (await health()).last_closed_epoch;
      await waitUntil(async () => summary(dir, closed) !== null, 5000, "their roots persisted");
      serve.kill9();
      await nc.close();
      anvil = await startAnvil({ port, state: join(dir, "anvil-state.json") });
      const provider = new JsonRpcProvider(anvil.url, undefined, { staticNetwork: true, cacheTimeout: -1 });
      const contract = new Contract(address, artifact().abi, new Wallet(ANVIL_KEYS[0], provider));
      // As if the service had sent the next anchor just before dying: same roots, sent by its key.
      const next = Number(await contract.lastEpoch()) + 1;
      const s = summary(dir, next);
      assert.ok(s && s.anchor === null, `epoch ${next} queued with its roots`);
      await (await contract.anchor(next, s.state_root, s.intents_root, s.account_count)).wait();
      // And the one after it with roots that are not the service's.
      const other = summary(dir, next + 1);
      assert.ok(other && other.anchor === null);
      await (await contract.anchor(next + 1, "0x" + "11".repeat(32), other.intents_root, other.account_count)).wait();
      serve = await startServe({ url: nats.url, dir, market: join(book, "market.json"), extra: args });
      const nc2 = await natsConnect(nats.url);
      await waitUntil(async () => summary(dir, next).anchor !== null, 15000, "the pre-crash anchor recorded");
      assert.equal(summary(dir, next).anchor.found_on_chain, true);
      const h = await (async () => {
        let last;
        await waitUntil(async () => /other roots/.test((last = (await request(nc2, "risk.api.health")).data.epochs).last_error), 15000, "the mismatch reported");
        return last;
      })();
      assert.match(h.last_error, new RegExp(`epoch ${next + 1} is already anchored .* with other roots`));
      assert.equal(summary(dir, next + 1).anchor, null, "a mismatched epoch is never recorded as anchored");
      const events = await contract.queryFilter(contract.filters.Anchored(), 0);
      assert.deepEqual(events.map((e) => Number(e.args.epoch)), events.map((_, i) => i + 1), "each epoch once, in order");
      await nc2.close();
      provider.destroy();
    } finally {
      await serve?.stop();
      await anvil.stop();
      nats.stop();
      cleanup(dir);
    }
  });
});
