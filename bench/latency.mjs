#!/usr/bin/env node
// Tick-to-alert latency of `vaultrisk serve` on loopback, against the NATS
// request-reply round trip on the same machine as the floor.
//
//   node bench/latency.mjs --vaultrisk build/cpu/cli/vaultrisk [--accounts 100000] [--samples 500] [--device cpu]
//                          [--stress-paths 10000] [--trades 200] [--trade-rate 1000 [--reshape-share 0.5]]
//                          [--new-accounts 50] [--serve-args "--snapshot-every 100000000"]
//
// With --trades, trade→alert (issue #10): a second probe account holds the same
// perp; a trade of +1 at S0 doubles it (liquidatable), -1 at S0 takes it back
// (margin_call), exactly, so each trade flips it. Each sample is the trade's
// JetStream publish -> that probe's alert. With --trade-rate, tick→alert is
// sampled again while trades on held positions of the book stream in at that rate.
//
// With --reshape-share F, that share of the streamed trades opens a position (an
// option the account is unlikely to hold) and the next such trade closes it again:
// each reshapes its account, which the service values apart (LiveEngine) and folds
// in with background layouts.
// With --new-accounts, new position→alert: each sample opens an account (a first
// deposit) and then times its first trade, a perp position that puts it in
// margin_call at once: the trade's publish -> the new account's alert. Each is a new
// account and a new position, which a full layout of the book used to follow.
// With --stress-paths, the same samples are taken again while a risk.api.stress
// Monte Carlo job of that many paths runs in the service (issue #8: a stress job
// must not delay ticks).
//
// A probe account sits one 0.1% BTC move from a status change (one long perp at
// entry S0 with cash 0.22*S0 - 10: margin_call at S0, healthy at S0 + 100), so
// ticks alternating S0 / S0 + 100 flip it every time. Each sample is publish ->
// the probe's alert received, in this process. The book's other accounts are
// revalued on every tick as usual.
import { spawn, execFileSync } from "node:child_process";
import { appendFileSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir, cpus } from "node:os";
import { join } from "node:path";
import { connect, headers } from "nats";
import { Wallet } from "ethers";

const arg = (n, d) => { const i = process.argv.indexOf(`--${n}`); return i > 0 ? process.argv[i + 1] : d; };
const VR = arg("vaultrisk", "build/cpu/cli/vaultrisk");
// More `serve` flags, space-separated (e.g. "--snapshot-every 100000000" to keep
// periodic snapshots out of a run).
const SERVE_ARGS = (arg("serve-args", "") || "").split(" ").filter(Boolean);
const ACCOUNTS = Number(arg("accounts", "100000"));
const SAMPLES = Number(arg("samples", "500"));
const DEVICE = arg("device", "cpu");
const STRESS_PATHS = Number(arg("stress-paths", "0"));
const TRADES = Number(arg("trades", "0"));
const TRADE_RATE = Number(arg("trade-rate", "0"));
const NEW_ACCOUNTS = Number(arg("new-accounts", "0"));
const RESHAPE_SHARE = Number(arg("reshape-share", "0"));
const TRADE_PROBE = 999999998;
const PROBE = 999999999;
const oracle = new Wallet("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318");
const dir = mkdtempSync(join(tmpdir(), "vr-lat-"));
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
const waitFor = (stream, re, ms) => new Promise((ok, no) => {
  let b = ""; const t = setTimeout(() => no(new Error(`timeout: ${b.slice(-500)}`)), ms);
  stream.on("data", (d) => { b += d; const m = b.match(re); if (m) { clearTimeout(t); ok(m); } });
});

const procs = [];
try {
  execFileSync(VR, ["gen-book", "--accounts", String(ACCOUNTS), "--underlyings", "3", "--time", String(Math.floor(Date.now() / 1000)), "--out", join(dir, "book"), "--quiet"]);
  const market = JSON.parse(readFileSync(join(dir, "book", "market.json"), "utf8"));
  const btc = market.underlyings.BTC, S0 = btc.spot, S1 = S0 + 100;
  appendFileSync(join(dir, "book", "accounts.csv"), `${PROBE},${0.22 * S0 - 10}\n`);
  appendFileSync(join(dir, "book", "positions.csv"), `${PROBE},BTC-PERP,1,${S0}\n`);
  appendFileSync(join(dir, "book", "accounts.csv"), `${TRADE_PROBE},${0.22 * S0 - 10}\n`);
  appendFileSync(join(dir, "book", "positions.csv"), `${TRADE_PROBE},BTC-PERP,1,${S0}\n`);
  // Held option positions of the book, for the background trade stream.
  const held = readFileSync(join(dir, "book", "positions.csv"), "utf8").split("\n").slice(1, 200001)
    .map((l) => l.split(",")).filter((f) => f.length >= 3 && !f[1].endsWith("-PERP"));
  const options = readFileSync(join(dir, "book", "instruments.csv"), "utf8").split("\n").slice(1)
    .map((l) => l.split(",")).filter((f) => f[1] === "option").map((f) => f[0]);
  writeFileSync(join(dir, "intent.key"), "0x0000000000000000000000000000000000000000000000000000000000000002\n");

  const nats = spawn("nats-server", ["-js", "-a", "127.0.0.1", "-p", "-1", "-sd", join(dir, "js")], { stdio: ["ignore", "pipe", "pipe"] });
  procs.push(nats);
  const url = `nats://127.0.0.1:${(await waitFor(nats.stderr, /client connections on [\d.]+:(\d+)/, 10000))[1]}`;
  const t0 = Date.now();
  const serve = spawn(VR, ["serve", "--nats", url, "--book", join(dir, "book"), "--market", join(dir, "book", "market.json"),
    "--state-dir", join(dir, "state"), "--oracle-signers", oracle.address, "--signing-key", join(dir, "intent.key"),
    "--metrics-port", "-1", "--device", DEVICE, "--quiet", ...SERVE_ARGS], { stdio: ["ignore", "pipe", "inherit"] });
  procs.push(serve);
  await waitFor(serve.stdout, /ready/, 600000);
  console.error(`serve ready on ${ACCOUNTS} accounts in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const nc = await connect({ servers: url });
  let seq = Date.now();
  const tick = async (spot) => {
    const body = JSON.stringify({ underlying: "BTC", seq: ++seq, time_ms: Date.now(), spot, rate: btc.rate ?? 0, confidence: 1, expiries: btc.expiries });
    const h = headers(); h.set("Vaultrisk-Signature", await oracle.signMessage(body));
    return { body: new TextEncoder().encode(body), h };
  };

  // Floor: request-reply round trip through the same server.
  nc.subscribe("bench.echo", { callback: (_, m) => m.respond(m.data) });
  await nc.flush();
  const rtt = [];
  for (let i = 0; i < SAMPLES; i++) { const s = process.hrtime.bigint(); await nc.request("bench.echo", new Uint8Array(64)); rtt.push(Number(process.hrtime.bigint() - s) / 1e6); }

  // Tick -> probe alert.
  const alerts = nc.subscribe(`risk.alert.*.${PROBE}`);
  const it = alerts[Symbol.asyncIterator]();
  let flip = 0;
  const sample = async (n, warm) => {
    const out = [];
    for (let i = 0; i < n + warm; i++) {
      const t = await tick(flip++ % 2 ? S0 : S1);  // the probe starts in margin_call at S0; signing is not timed
      const s = process.hrtime.bigint();
      nc.publish("oracle.tick.BTC", t.body, { headers: t.h });
      await Promise.race([it.next(), new Promise((_, no) => setTimeout(() => no(new Error("no alert in 10 s")), 10000))]);
      if (i >= warm) out.push(Number(process.hrtime.bigint() - s) / 1e6);
    }
    return out;
  };
  const lat = await sample(SAMPLES, 20);

  // Trade -> alert, and ticks under a stream of trades (issue #10).
  let trades = null, underTrades = null, newAccounts = null;
  if (TRADES > 0 || TRADE_RATE > 0 || NEW_ACCOUNTS > 0) {
    const js = nc.jetstream();
    let tid = 0;
    const trade = (account, instrument, quantity, price) => js.publish(`vault.event.trade.${account}`,
      new TextEncoder().encode(JSON.stringify({ id: `bench-${process.pid}-${++tid}`, account: Number(account), instrument, quantity, price })));
    if (TRADES > 0) {
      const talerts = nc.subscribe(`risk.alert.*.${TRADE_PROBE}`);
      const tit = talerts[Symbol.asyncIterator]();
      const xs = [];
      for (let i = 0; i < TRADES + 10; i++) {
        const s = process.hrtime.bigint();
        await trade(TRADE_PROBE, "BTC-PERP", i % 2 ? -1 : 1, S0);
        await Promise.race([tit.next(), new Promise((_, no) => setTimeout(() => no(new Error("no alert for a trade in 10 s")), 10000))]);
        if (i >= 10) xs.push(Number(process.hrtime.bigint() - s) / 1e6);
      }
      trades = { samples: xs.length, trade_to_alert_ms: { p50: pct(xs, 0.5), p99: pct(xs, 0.99), p999: pct(xs, 0.999), max: Math.max(...xs) } };
    }
    if (NEW_ACCOUNTS > 0) {
      const xs = [];
      for (let i = 0; i < NEW_ACCOUNTS + 5; i++) {
        const id = 7000000000 + i;
        const nalerts = nc.subscribe(`risk.alert.*.${id}`, { max: 1 });
        const nit = nalerts[Symbol.asyncIterator]();
        await js.publish(`vault.event.deposit.${id}`, new TextEncoder().encode(JSON.stringify({ id: `bench-${process.pid}-d${i}`, account: id, amount: 0.22 * S0 - 10 })));
        await nc.flush();
        await new Promise((r) => setTimeout(r, 30));  // the opening applied; the trade alone is timed
        const s = process.hrtime.bigint();
        await trade(id, "BTC-PERP", 1, S0);
        await Promise.race([nit.next(), new Promise((_, no) => setTimeout(() => no(new Error("no alert for a new account's trade in 30 s")), 30000))]);
        if (i >= 5) xs.push(Number(process.hrtime.bigint() - s) / 1e6);
      }
      newAccounts = { samples: xs.length, trade_to_alert_ms: { p50: pct(xs, 0.5), p99: pct(xs, 0.99), p999: pct(xs, 0.999), max: Math.max(...xs) } };
    }
    if (TRADE_RATE > 0 && held.length) {
      let streaming = true, sent = 0, k = 0, reshapes = 0;
      const stream = (async () => {
        const t0 = Date.now();
        while (streaming) {
          const due = Math.floor(((Date.now() - t0) / 1000) * TRADE_RATE);
          for (; sent < due; sent++) {
            if (RESHAPE_SHARE > 0 && (sent * RESHAPE_SHARE) % 1 + RESHAPE_SHARE >= 1) {  // open, then close
              const j = Math.floor(reshapes / 2);
              trade(held[(j * 7919) % held.length][0], options[(j * 104729) % options.length], reshapes % 2 ? -0.5 : 0.5, 1)
                .catch(() => {});
              reshapes++;
              continue;
            }
            // +0.001 then -0.001 on the same position: never zero
            const [a, ins] = held[k++ % held.length];
            trade(a, ins, (Math.floor(sent / held.length) % 2) ? -0.001 : 0.001, 1).catch(() => {});
          }
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      const started = Date.now();
      const xs = await sample(SAMPLES, 0);
      streaming = false;
      await stream;
      const layout = JSON.parse(new TextDecoder().decode((await nc.request("risk.api.health", new Uint8Array(0), { timeout: 30000 })).data)).layout;
      underTrades = { trades_per_s: sent / ((Date.now() - started) / 1000), reshaping_trades: reshapes, layout, samples: xs.length,
        tick_to_alert_ms: { p50: pct(xs, 0.5), p99: pct(xs, 0.99), p999: pct(xs, 0.999), max: Math.max(...xs) } };
    }
  }

  // The same while a stress job runs in the service.
  let during = null;
  if (STRESS_PATHS > 0) {
    let ended = null;
    const started = Date.now();
    const job = nc.request("risk.api.stress", new TextEncoder().encode(JSON.stringify({ monte_carlo: STRESS_PATHS, horizon_days: 1, seed: 1 })),
      { timeout: 3600000 }).then(() => { ended = Date.now(); });
    const prog = nc.subscribe("risk.stress.progress.>", { max: 1 });
    for await (const _ of prog) break;  // the job has started
    const xs = await sample(SAMPLES, 0);
    const running = ended === null;
    await job;
    during = { paths: STRESS_PATHS, samples: xs.length, job_still_running_after_samples: running,
      job_seconds: (ended - started) / 1000,
      tick_to_alert_ms: { p50: pct(xs, 0.5), p99: pct(xs, 0.99), p999: pct(xs, 0.999), max: Math.max(...xs) } };
  }

  // Sustained: ticks back to back; the service coalesces (latest per underlying wins),
  // so the figure is revaluations it completes per second with a queue always waiting.
  const BURST = 2000;
  const ticks = [];
  for (let i = 0; i < BURST; i++) ticks.push(await tick(i % 2 ? S1 : S0));
  const s = process.hrtime.bigint();
  for (const t of ticks) nc.publish("oracle.tick.BTC", t.body, { headers: t.h });
  await nc.flush();
  for (;;) {
    const h = JSON.parse(new TextDecoder().decode((await nc.request("risk.api.health", new Uint8Array(0), { timeout: 30000 })).data));
    if (h.ticks.BTC === seq) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  const burstS = Number(process.hrtime.bigint() - s) / 1e9;
  const result = {
    accounts: ACCOUNTS, device: DEVICE, samples: lat.length, cpus: cpus().length, cpu: cpus()[0]?.model,
    tick_to_alert_ms: { p50: pct(lat, 0.5), p99: pct(lat, 0.99), p999: pct(lat, 0.999), max: Math.max(...lat) },
    nats_rtt_ms: { p50: pct(rtt, 0.5), p99: pct(rtt, 0.99), p999: pct(rtt, 0.999) },
    burst: { ticks: BURST, seconds: burstS, ticks_per_s: BURST / burstS },
    during_stress: during,
    trades, new_account_trades: newAccounts, ticks_under_trades: underTrades,
  };
  console.log(JSON.stringify(result, null, 1));
  await nc.close();
} finally {
  for (const p of procs.reverse()) p.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
}
