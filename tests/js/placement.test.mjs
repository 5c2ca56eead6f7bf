// Starting beside a JetStream cluster that is still forming (issue #9, CI failure
// of stop 14): nats-servers started together elect a metadata leader before every
// peer is known, and an R3 stream created in that window fails with "no suitable
// peers for placement". Before the fix `serve --replicas 3` exited on it; now it
// retries until the cluster can place its streams, and fails at once, naming the
// stream, where no waiting can help (replicas on a server without clustering).
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import {
  ORACLE, cleanup, natsConnect, request, runOut, sleep, startNats, startNatsCluster, startServe, tempDir, waitUntil,
  writePerpBook,
} from "./harness.mjs";

function writeBook(dir) {
  return writePerpBook(dir, [{ account: 1, cash: 100, quantity: 1, entry: 100 }, { account: 2, cash: 5, quantity: -1, entry: 100 }]);
}

describe("serve --replicas 3 beside a JetStream cluster that is still forming", () => {
  let dir, nats, a, nc, book;

  before(() => {
    dir = tempDir();
    book = writeBook(dir);
    mkdirSync(join(dir, "a"));
  });

  after(async () => {
    await nc?.close();
    await a?.stop();
    nats?.stop();
    cleanup(dir);
  });

  test("two of three nodes up: serve waits for the third, then owns every partition on R3 streams", async () => {
    nats = await startNatsCluster(dir, 3, { start: 2 });
    const starting = startServe({ url: nats.url, dir: join(dir, "a"), book, market: join(book, "market.json"),
      extra: ["--partitions", "8", "--instance", "a", "--replicas", "3"] });
    let failed = null;
    starting.catch((e) => { failed = e; });
    await sleep(4000);  // R3 cannot be placed on two nodes: serve must still be waiting
    assert.equal(failed, null, `serve gave up while the cluster was forming: ${failed?.message}`);
    nats.nodes[2].start();
    a = await starting;
    assert.match(a.log(), /create stream VAULT: the JetStream cluster cannot place it yet .*retrying/);
    nc = await natsConnect(nats.url);
    await waitUntil(async () => {
      try {
        const h = (await request(nc, "risk.api.health")).data;
        return Object.values(h.owners).filter((o) => o === "a").length === 8;
      } catch {
        return false;
      }
    }, 30000, "a owning all 8 partitions");
    const jsm = await nc.jetstreamManager();
    for (const s of ["VAULT", "INTENTS", "VAULTRISK_SNAP", "KV_VAULTRISK_LEASES"]) {
      const info = await jsm.streams.info(s);
      assert.equal(info.config.num_replicas, 3, s);
    }
    // Takeovers read snapshot chunks with direct gets, all in flight at once.
    assert.equal((await jsm.streams.info("VAULTRISK_SNAP")).config.allow_direct, true);
  });

  test("replicas on a server without clustering: a clear error at once, naming the stream", async () => {
    const single = await startNats(dir);
    try {
      const t0 = Date.now();
      const r = await runOut(["serve", "--nats", single.url, "--state-dir", join(dir, "single"), "--book", book,
        "--market", join(book, "market.json"), "--partitions", "8", "--instance", "s", "--replicas", "3",
        "--oracle-signers", ORACLE.address, "--signing-key", join(dir, "a", "intent.key"), "--metrics-port", "0"]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /create stream VAULT: .*replicas 3/i);
      assert.ok(Date.now() - t0 < 30000, "it did not wait out the placement retries");
    } finally {
      single.stop();
    }
  });
});
