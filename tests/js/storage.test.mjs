// Storage damage in --state-dir (issue #11): after kill -9 the state dir is damaged
// the ways an operator or a disk would, and the restart either recovers exactly or
// refuses to start with the damaged file named. Never wrong state, never a reused
// nonce.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync, readFileSync, mkdirSync, readdirSync, truncateSync, unlinkSync, statSync } from "node:fs";
import { join } from "node:path";
import {
  startNats, startServe, tempDir, cleanup, natsConnect, signedTick, publishTick, waitUntil, request, sleep, runOut,
  INTENT_KEY, ORACLE,
} from "./harness.mjs";

const DAY = 86400;
const NOW_S = Math.floor(Date.now() / 1000);
const enc = (o) => new TextEncoder().encode(JSON.stringify(o));
const N = 30;

function writeBook(dir) {
  const book = join(dir, "book");
  mkdirSync(book, { recursive: true });
  writeFileSync(join(book, "instruments.csv"), "id,kind,underlying,expiry,strike,type\nBTC-PERP,perp,BTC,,,\n");
  let acc = "account,cash\n", pos = "account,instrument,quantity,entry_price\n";
  for (let a = 1; a <= N; a++) {
    acc += `${a},${(300 + a * 10.37).toFixed(2)}\n`;
    pos += `${a},BTC-PERP,10,100\n`;
  }
  writeFileSync(join(book, "accounts.csv"), acc);
  writeFileSync(join(book, "positions.csv"), pos);
  writeFileSync(join(book, "market.json"), JSON.stringify({ time: NOW_S, underlyings: { BTC: { spot: 100, expiries: [] } } }));
  return book;
}

// A service that has seen deposits, snapshots and intents, then was killed with -9.
async function crashedService({ snapshots = 1 } = {}) {
  const dir = tempDir();
  const nats = await startNats(dir);
  const book = writeBook(dir);
  const nc = await natsConnect(nats.url);
  const extra = ["--max-tick-age-ms", "120000", "--snapshot-every", "20"];
  let serve = await startServe({ url: nats.url, dir, book, market: join(book, "market.json"), extra });
  const js = nc.jetstream();
  let seq = 1;
  const tickAndWait = async (spot) => {
    await publishTick(nc, "BTC", await signedTick("BTC", ++seq, spot));
    await waitUntil(async () => (await request(nc, "risk.api.health")).data.ticks.BTC === seq, 5000, `tick ${spot}`);
  };
  await tickAndWait(80);  // every account liquidatable: intents
  for (let k = 0; k < 20 * snapshots + 5; k++)
    await js.publish(`vault.event.deposit.${1 + (k % N)}`, enc({ id: `d${k}`, account: 1 + (k % N), amount: 0.25 + k }), { msgID: `d${k}` });
  const last = (await (await nc.jetstreamManager()).streams.info("VAULT")).state.last_seq;
  await waitUntil(async () => (await request(nc, "risk.api.health")).data.vault_seq >= last, 10000, "events applied");
  await tickAndWait(101);
  await tickAndWait(80);  // liquidatable again: new intents
  await sleep(300);
  const state = [];
  for (let a = 1; a <= N; a++) state.push((await request(nc, "risk.api.account", { account: a })).data.equity);
  serve.kill9();
  await sleep(200);
  const stateDir = join(dir, "state");
  return { dir, nats, nc, book, extra, stateDir, state, seq,
    async close() { await nc.close(); nats.stop(); cleanup(dir); } };
}

function currentSnapshot(stateDir) {
  const snaps = readdirSync(stateDir).filter((f) => /^snapshot-\d+$/.test(f)).sort((a, b) => Number(b.slice(9)) - Number(a.slice(9)));
  return join(stateDir, snaps[0]);
}

async function restartRefuses(c, pattern) {
  const r = await runOut(["serve", "--nats", c.nats.url, "--state-dir", c.stateDir, "--oracle-signers", ORACLE.address,
    "--signing-key", join(c.dir, "intent.key"), "--metrics-port", "-1", "--book", c.book]);
  assert.notEqual(r.code, 0, `serve started on damaged state: ${r.stderr}`);
  assert.match(r.stderr, pattern);
  return r.stderr;
}

async function readIntents(nc) {
  const c = await nc.jetstream().consumers.get("INTENTS");
  const out = [];
  for await (const m of await c.fetch({ max_messages: 5000, expires: 1500 })) out.push(JSON.parse(new TextDecoder().decode(m.data)));
  return out;
}

describe("damaged state dir", () => {
  test("accounts.csv cut by 3 bytes: recovered exactly from the previous snapshot and the WAL, or refused naming it", { timeout: 60000 }, async () => {
    const c = await crashedService({ snapshots: 3 });
    try {
      const f = join(currentSnapshot(c.stateDir), "accounts.csv");
      truncateSync(f, statSync(f).size - 3);
      const serve = await startServe({ url: c.nats.url, dir: c.dir, extra: c.extra });
      assert.match(serve.log(), /accounts\.csv/, "the damage is logged with the file");
      for (let a = 1; a <= N; a++)
        assert.equal((await request(c.nc, "risk.api.account", { account: a })).data.equity, c.state[a - 1], `account ${a}`);
      await serve.stop();
    } finally { await c.close(); }
  });

  test("the only snapshot damaged: refused, naming the file", { timeout: 60000 }, async () => {
    const c = await crashedService({ snapshots: 0 });
    try {
      const snaps = readdirSync(c.stateDir).filter((f) => /^snapshot-\d+$/.test(f));
      for (const s of snaps) {
        const f = join(c.stateDir, s, "accounts.csv");
        truncateSync(f, statSync(f).size - 3);
      }
      await restartRefuses(c, /accounts\.csv/);
    } finally { await c.close(); }
  });

  test("meta.json deleted is damage, not a fresh start", { timeout: 60000 }, async () => {
    const c = await crashedService({ snapshots: 0 });
    try {
      for (const s of readdirSync(c.stateDir).filter((f) => /^snapshot-\d+$/.test(f))) unlinkSync(join(c.stateDir, s, "meta.json"));
      const err = await restartRefuses(c, /meta\.json/);
      assert.match(err, /--fresh-state/, "the message says how to start fresh on purpose");
      // On purpose: the old state is set aside (not deleted), the book rebuilt from --book
      // and every VAULT event, and nonces continue above every one used.
      const before = (await readIntents(c.nc)).map((i) => BigInt(i.intent.nonce));
      const serve = await startServe({ url: c.nats.url, dir: c.dir, book: c.book, extra: [...c.extra, "--fresh-state"] });
      assert.ok(readdirSync(c.stateDir).some((f) => f.startsWith("discarded-")));
      // Ticks are not in VAULT: the oracle's next tick (same spot; perps carry no time value) values the book.
      await publishTick(c.nc, "BTC", await signedTick("BTC", c.seq + 1, 80));
      await waitUntil(async () => (await request(c.nc, "risk.api.health")).data.status === "ok", 5000, "valued");
      for (let a = 1; a <= N; a++)
        assert.equal((await request(c.nc, "risk.api.account", { account: a })).data.equity, c.state[a - 1], `account ${a}`);
      await publishTick(c.nc, "BTC", await signedTick("BTC", c.seq + 2, 120));
      await sleep(300);
      await publishTick(c.nc, "BTC", await signedTick("BTC", c.seq + 3, 70));
      await waitUntil(async () => (await readIntents(c.nc)).length > before.length, 8000, "new intents");
      const fresh = (await readIntents(c.nc)).slice(before.length).map((i) => BigInt(i.intent.nonce));
      const maxBefore = before.reduce((m, n) => (n > m ? n : m), 0n);
      assert.ok(fresh.every((n) => n > maxBefore), `nonces ${fresh} after ${maxBefore}`);
      await serve.stop();
    } finally { await c.close(); }
  });

  test("a garbled WAL record is refused with the file and offset", { timeout: 60000 }, async () => {
    const c = await crashedService({ snapshots: 0 });
    try {
      const wals = readdirSync(c.stateDir).filter((f) => /^wal-\d+\.jsonl$/.test(f)).sort();
      const f = join(c.stateDir, wals.at(-1));
      const text = readFileSync(f, "latin1");
      const lines = text.split("\n");
      assert.ok(lines.length > 4, "the WAL has records");
      lines[1] = lines[1].replace(/"t":"/, '"t":"X');  // same length, checksum no longer matches
      writeFileSync(f, lines.join("\n"), "latin1");
      await restartRefuses(c, new RegExp(`${wals.at(-1).replace(".", "\\.")}.*(offset|byte) \\d+`));
    } finally { await c.close(); }
  });

  test("CURRENT garbled: the newest intact snapshot is found", { timeout: 60000 }, async () => {
    const c = await crashedService({ snapshots: 1 });
    try {
      writeFileSync(join(c.stateDir, "CURRENT"), "snapsh\x00t-9\n");
      const serve = await startServe({ url: c.nats.url, dir: c.dir, extra: c.extra });
      assert.match(serve.log(), /CURRENT/);
      for (let a = 1; a <= N; a++)
        assert.equal((await request(c.nc, "risk.api.account", { account: a })).data.equity, c.state[a - 1], `account ${a}`);
      await serve.stop();
    } finally { await c.close(); }
  });

  for (const damage of ["emptied", "cut"]) {
    test(`the nonce file ${damage}: no nonce is reused (WAL and INTENTS stream hold the high-water mark)`, { timeout: 60000 }, async () => {
      const c = await crashedService({ snapshots: 0 });
      try {
        const f = join(c.stateDir, "nonce");
        if (damage === "emptied") writeFileSync(f, "");
        else truncateSync(f, 2);
        const before = (await readIntents(c.nc)).map((i) => BigInt(i.intent.nonce));
        assert.ok(before.length > 0);
        const serve = await startServe({ url: c.nats.url, dir: c.dir, extra: c.extra });
        let seq = c.seq;
        await publishTick(c.nc, "BTC", await signedTick("BTC", ++seq, 120));
        await sleep(300);
        await publishTick(c.nc, "BTC", await signedTick("BTC", ++seq, 70));
        await waitUntil(async () => (await readIntents(c.nc)).length > before.length, 8000, "new intents");
        const after = (await readIntents(c.nc)).map((i) => BigInt(i.intent.nonce));
        const maxBefore = before.reduce((m, n) => (n > m ? n : m), 0n);
        const fresh = after.slice(before.length);
        assert.ok(fresh.every((n) => n > maxBefore), `nonces after restart ${fresh} vs max before ${maxBefore}`);
        assert.equal(new Set(after).size, after.length, "no nonce twice");
        await serve.stop();
      } finally { await c.close(); }
    });
  }
});

// Snapshots are due by what they save. Ticks and status changes are small records:
// counting them against --snapshot-every rewrote the whole book every few hundred
// ticks (at 100k accounts, 34 MB for every ~1 MB of WAL), and the ticks during each
// write were slowed. Vault events change the book and still count.
describe("snapshot cadence", () => {
  test("ticks alone do not make snapshots; --snapshot-every vault events do", { timeout: 60000 }, async () => {
    const dir = tempDir();
    const nats = await startNats(dir);
    const book = writeBook(dir);
    const nc = await natsConnect(nats.url);
    let serve = null;
    try {
      serve = await startServe({ url: nats.url, dir, book, market: join(book, "market.json"),
        extra: ["--max-tick-age-ms", "120000", "--snapshot-every", "5"] });
      const stateDir = join(dir, "state");
      const snapshots = () => readdirSync(stateDir).filter((f) => /^snapshot-\d+$/.test(f)).map((f) => Number(f.slice(9))).sort((a, b) => a - b);
      assert.deepEqual(snapshots(), [1]);  // the seed book
      let seq = 1;
      // 30 ticks, each flipping every account (liquidatable at 80, healthy at 120): 30
      // tick records and 30 * N status records, far more than 5.
      for (let k = 0; k < 30; k++) {
        await publishTick(nc, "BTC", await signedTick("BTC", ++seq, k % 2 ? 120 : 80));
        await waitUntil(async () => (await request(nc, "risk.api.health")).data.ticks.BTC === seq, 5000, `tick ${k}`);
      }
      await sleep(300);
      assert.deepEqual(snapshots(), [1], "no snapshot for ticks and statuses alone");
      const js = nc.jetstream();
      for (let k = 0; k < 6; k++)
        await js.publish(`vault.event.deposit.${1 + k}`, enc({ id: `c${k}`, account: 1 + k, amount: 1 }), { msgID: `c${k}` });
      await waitUntil(async () => snapshots().some((g) => g > 1), 10000, "a snapshot after 5 vault events");
      await waitUntil(async () => /snapshot due \(vault events\)/.test(serve.log()), 5000, "the reason logged");
    } finally { if (serve) await serve.stop(); await nc.close(); nats.stop(); cleanup(dir); }
  });
});
