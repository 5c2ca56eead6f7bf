// Partitions stopped and started inside live processes while ticks pour in (issue
// #9): a second instance joins and leaves three times, so that each instance hands
// partitions over with tick callbacks in flight. Before the fix, a stopped
// partition's members were destroyed while its NATS handlers could still run (a
// double free seen at 100k accounts); under ASan (scripts/sanitize) any such use
// after free fails this test. Both processes must live through it, and alerts keep
// coming after the last handover.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { headers } from "nats";
import {
  ORACLE, cleanup, collect, natsConnect, request, sleep, startNatsCluster, startServe, tempDir, waitUntil,
  writePerpBook,
} from "./harness.mjs";

const KEY_B = "0x0000000000000000000000000000000000000000000000000000000000000003";

function writeBook(dir) {
  const rows = Array.from({ length: 400 }, (_, i) => ({ account: i + 1, cash: 20 + ((i + 1) % 40), quantity: 1, entry: 100 }));
  return writePerpBook(dir, rows);
}

describe("partitions handed over while ticks pour in", () => {
  let dir, nats, a, nc, book, ticking = true, ticker;
  const owners = async () => {
    try {
      return Object.values((await request(nc, "risk.api.health")).data.owners);
    } catch {
      return [];
    }
  };
  const startB = () => startServe({ url: nats.url, dir: join(dir, "b"), book, market: join(book, "market.json"),
    extra: ["--partitions", "8", "--instance", "b", "--signing-key", join(dir, "b.key")] });

  before(async () => {
    dir = tempDir();
    book = writeBook(dir);
    mkdirSync(join(dir, "a"));
    mkdirSync(join(dir, "b"));
    writeFileSync(join(dir, "b.key"), KEY_B + "\n");
    nats = await startNatsCluster(dir, 1);
    a = await startServe({ url: nats.url, dir: join(dir, "a"), book, market: join(book, "market.json"),
      extra: ["--partitions", "8", "--instance", "a"] });
    nc = await natsConnect(nats.url);
    // Ticks as fast as they can be signed, alternating so that statuses flip.
    let seq = Date.now();
    ticker = (async () => {
      while (ticking) {
        const body = JSON.stringify({ underlying: "BTC", seq: ++seq, time_ms: Date.now(), spot: seq % 2 ? 70 : 100, rate: 0, confidence: 1, expiries: [] });
        const h = headers();
        h.set("Vaultrisk-Signature", await ORACLE.signMessage(body));
        nc.publish("oracle.tick.BTC", new TextEncoder().encode(body), { headers: h });
        await sleep(2);
      }
    })();
  });

  after(async () => {
    ticking = false;
    await ticker;
    await nc?.close();
    await a?.stop();
    nats?.stop();
    cleanup(dir);
  });

  test("three joins and leaves: both instances survive, every partition owned, alerts flowing", async () => {
    await waitUntil(async () => (await owners()).filter((o) => o === "a").length === 8, 30000, "a owning all 8");
    for (let i = 0; i < 3; i++) {
      const b = await startB();
      await waitUntil(async () => (await owners()).filter((o) => o === "b").length === 4, 60000, `b owning 4 (join ${i + 1})`);
      await b.stop();  // a clean stop: b hands its 4 back while ticks arrive
      assert.equal(b.proc.exitCode, 0, `b exited cleanly (leave ${i + 1}): ${b.log().slice(-2000)}`);
      await waitUntil(async () => (await owners()).filter((o) => o === "a").length === 8, 60000, `a owning all 8 again (${i + 1})`);
      assert.equal(a.proc.exitCode, null, `a is alive: ${a.log().slice(-2000)}`);
    }
    const alerts = collect(nc, "risk.alert.>");
    await waitUntil(() => alerts.out.length > 0, 10000, "alerts after the handovers");
    alerts.stop();
  });
});
