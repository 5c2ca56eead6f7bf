// risk.api.stress (issue #8): SPEC §8 stress against the live book and market as a
// job: progress on risk.stress.progress.<job>, the summary as the reply, the same
// numbers as `vaultrisk stress` on the same inputs, and ticks applied while it runs.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  startNats, startServe, tempDir, cleanup, natsConnect, signedTick, publishTick, collect, waitUntil, run, sleep,
} from "./harness.mjs";

const NOW_S = Math.floor(Date.now() / 1000);

async function stressRequest(nc, body, timeout = 120000) {
  const m = await nc.request("risk.api.stress", new TextEncoder().encode(JSON.stringify(body)), { timeout });
  return { data: JSON.parse(new TextDecoder().decode(m.data)), error: m.headers?.get("Nats-Service-Error-Code") };
}

describe("risk.api.stress", () => {
  let dir, nats, serve, nc, book;
  before(async () => {
    dir = tempDir();
    nats = await startNats(dir);
    book = join(dir, "book");
    await run(["gen-book", "--accounts", "3000", "--underlyings", "2", "--seed", "2", "--time", String(NOW_S), "--out", book, "--quiet"]);
    serve = await startServe({ url: nats.url, dir, book, market: join(book, "market.json"), extra: ["--max-tick-age-ms", "60000"] });
    nc = await natsConnect(nats.url);
  });
  after(async () => {
    await nc?.close();
    await serve?.stop();
    nats?.stop();
    cleanup(dir);
  });

  const cli = async (name, args) => {
    const out = join(dir, name);
    await run(["stress", "--book", book, "--market", join(book, "market.json"), "--out", out, "--quiet", ...args]);
    return JSON.parse(readFileSync(join(out, "summary.json"), "utf8"));
  };

  test("named scenarios: the reply is the CLI's summary on the same book and market", async () => {
    const scenarios = { horizon_days: 1, scenarios: [{ name: "crash", shocks: { BTC: { spot: 0.7, vol: 0.2 }, ETH: { spot: 0.6 } } },
      { name: "calm", shocks: { BTC: { vol: -0.1 } } }] };
    const r = await stressRequest(nc, scenarios);
    assert.equal(r.error, undefined, JSON.stringify(r.data));
    writeFileSync(join(dir, "named.json"), JSON.stringify(scenarios));
    const want = await cli("named", ["--scenarios", join(dir, "named.json")]);
    assert.deepEqual(r.data.vault, want.vault);
    assert.deepEqual(r.data.bad_debt, want.bad_debt);
    assert.deepEqual(r.data.contributions, want.contributions);
    assert.equal(r.data.named.length, 2);
    assert.equal(r.data.named[0].name, "crash");
    assert.ok(r.data.named[0].liquidatable_accounts >= r.data.named[1].liquidatable_accounts);
  });

  test("Monte Carlo: progress is published and the reply matches the CLI for the same seed", async () => {
    const progress = collect(nc, "risk.stress.progress.>");
    const r = await stressRequest(nc, { monte_carlo: 3000, horizon_days: 1, seed: 9, confidence: 0.975 });
    assert.equal(r.error, undefined, JSON.stringify(r.data));
    const want = await cli("mc", ["--monte-carlo", "3000", "--horizon-days", "1", "--seed", "9", "--confidence", "0.975"]);
    assert.deepEqual(r.data.vault, want.vault);
    assert.deepEqual(r.data.bad_debt, want.bad_debt);
    await waitUntil(() => progress.out.some((p) => p.data.done === 3000), 5000, "final progress");
    assert.ok(progress.out.every((p) => p.data.job === r.data.job && p.data.total === 3000));
    progress.stop();
  });

  test("ticks are applied while a job runs; a second job is refused until it ends", async () => {
    const first = stressRequest(nc, { monte_carlo: 80000, horizon_days: 1, seed: 1 }, 300000);
    const progress = collect(nc, "risk.stress.progress.>");
    await waitUntil(() => progress.out.length > 0, 30000, "the job to start");
    const tick = await signedTick("BTC", 1, 60000, { expiries: JSON.parse(readFileSync(join(book, "market.json"), "utf8")).underlyings.BTC.expiries });
    await publishTick(nc, "BTC", tick);
    await waitUntil(async () => (await nc.request("risk.api.health", new TextEncoder().encode("{}"), { timeout: 5000 })
      .then((m) => JSON.parse(new TextDecoder().decode(m.data)).ticks.BTC)) === 1, 10000, "the tick applied during the job");
    const second = await stressRequest(nc, { monte_carlo: 10, horizon_days: 1 });
    assert.equal(second.error, "503", "the job was still running when the tick went through");
    assert.match(second.data.error, /a stress job is running/);
    const r = await first;
    assert.equal(r.error, undefined, JSON.stringify(r.data));
    assert.equal(r.data.scenarios, 80000);
    progress.stop();
  });

  test("bad requests get a 400 that names the field", async () => {
    for (const [body, pattern] of [
      [{ monte_carlo: 0, horizon_days: 1 }, /monte_carlo: the number of paths/],
      [{ monte_carlo: 10, horizon_days: 1, model: { correlation: { "BTC/ETH": 2 } } }, /correlation\.BTC\/ETH/],
      [{ scenarios: [{ name: "x", shocks: { DOGE: { spot: 0.5 } } }] }, /scenarios\[0\]\.shocks\.DOGE/],
      [{ nothing: 1 }, /give "scenarios".*or "monte_carlo"/],
    ]) {
      const r = await stressRequest(nc, body);
      assert.equal(r.error, "400", JSON.stringify(r.data));
      assert.match(r.data.error, pattern);
    }
  });
});
