#!/usr/bin/env node
// Failover time of a cluster (issue #9): kill -9 of an instance to alerts flowing
// again for its partitions, at 100k accounts, on a 3-node NATS JetStream cluster
// (R3 streams) with two `vaultrisk serve --partitions 8` instances.
//
//   node bench/failover.mjs --vaultrisk build/cpu/cli/vaultrisk [--accounts 100000] [--nodes 3] [--rounds 3]
//
// One probe account per partition sits one 0.1% BTC move from a status change (as
// in bench/latency.mjs), so each tick alternating S0 / S0 + 100 flips every probe.
// Ticks go out every 100 ms throughout. A round: wait until both instances own 4
// partitions and every probe alerts; kill -9 the instance that owns partition 0's
// probe; the figure is the time from the kill to the first alert from a probe of
// each partition it owned (the slowest of them), i.e. every one of its partitions
// alerting again. The killed instance is restarted (with an empty state dir) for
// the next round. Prints a JSON summary; also the floor: the lease (a partition
// cannot pass on before its lease expires).
import { execFileSync } from "node:child_process";
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { headers } from "nats";
import { Wallet } from "ethers";

const arg = (n, d) => { const i = process.argv.indexOf(`--${n}`); return i > 0 ? process.argv[i + 1] : d; };
process.env.VAULTRISK = resolve(arg("vaultrisk", "build/cpu/cli/vaultrisk"));
process.env.PATH = `/usr/sbin:${process.env.PATH}`;
const { natsConnect, request, rssMiB, sleep, startNatsCluster, startServe, tempDir, cleanup, waitUntil, ORACLE } =
  await import("../tests/js/harness.mjs");

const ACCOUNTS = Number(arg("accounts", "100000"));
const NODES = Number(arg("nodes", "3"));
const ROUNDS = Number(arg("rounds", "3"));
const LEASE_MS = Number(arg("lease-ms", "2000"));
const P = 8;
const KEY_B = "0x0000000000000000000000000000000000000000000000000000000000000003";

function partitionOf(account) {
  let h = 2166136261;
  for (const c of Buffer.from(String(account))) h = Math.imul(h ^ c, 16777619) >>> 0;
  return h % P;
}

const dir = tempDir();
let nats, a, b, nc, ticking = true;
const summary = { accounts: ACCOUNTS, partitions: P, nats_nodes: NODES, replicas: NODES >= 3 ? 3 : 1, lease_ms: LEASE_MS, rounds: [] };
try {
  execFileSync(process.env.VAULTRISK, ["gen-book", "--accounts", String(ACCOUNTS), "--underlyings", "3", "--time",
    String(Math.floor(Date.now() / 1000)), "--out", join(dir, "book"), "--quiet"]);
  const market = JSON.parse(readFileSync(join(dir, "book", "market.json"), "utf8"));
  const btc = market.underlyings.BTC, S0 = btc.spot, S1 = S0 + 100;
  const probes = new Map();  // partition -> probe account
  for (let id = 900000000; probes.size < P; id++) if (!probes.has(partitionOf(id))) probes.set(partitionOf(id), id);
  for (const id of probes.values()) {
    appendFileSync(join(dir, "book", "accounts.csv"), `${id},${0.22 * S0 - 10}\n`);
    appendFileSync(join(dir, "book", "positions.csv"), `${id},BTC-PERP,1,${S0}\n`);
  }
  const positions = readFileSync(join(dir, "book", "positions.csv"), "utf8").split("\n").length - 2;
  summary.positions = positions;
  writeFileSync(join(dir, "b.key"), KEY_B + "\n");
  nats = await startNatsCluster(dir, NODES);
  const extra = (name) => ["--partitions", String(P), "--replicas", String(summary.replicas), "--lease-ms", String(LEASE_MS),
    "--instance", name, ...(name === "b" ? ["--signing-key", join(dir, "b.key")] : [])];
  const start = (name) => {
    mkdirSync(join(dir, name), { recursive: true });
    return startServe({ url: nats.url, dir: join(dir, name), book: join(dir, "book"), market: join(dir, "book", "market.json"), extra: extra(name) });
  };
  const t0 = Date.now();
  a = await start("a");
  b = await start("b");
  nc = await natsConnect(nats.url);
  const alerts = [];  // [time, partition]
  const byProbe = new Map([...probes].map(([k, id]) => [id, k]));
  const sub = nc.subscribe("risk.alert.>");
  (async () => {
    for await (const m of sub) {
      const id = Number(m.subject.split(".").pop());
      if (byProbe.has(id)) alerts.push([Date.now(), byProbe.get(id)]);
    }
  })();
  let seq = Date.now(), flip = 0;
  (async () => {
    while (ticking) {
      const body = JSON.stringify({ underlying: "BTC", seq: ++seq, time_ms: Date.now(), spot: flip++ % 2 ? S0 : S1, rate: btc.rate ?? 0, confidence: 1, expiries: btc.expiries });
      const h = headers();
      h.set("Vaultrisk-Signature", await ORACLE.signMessage(body));
      nc.publish("oracle.tick.BTC", new TextEncoder().encode(body), { headers: h });
      await sleep(100);
    }
  })();
  // An instance that died is a failure of the run, with its last words.
  const alive = () => {
    for (const [n, p] of [["a", a], ["b", b]])
      if (p.proc.exitCode !== null || p.proc.signalCode !== null && !p.killed)
        throw new Error(`instance ${n} exited (${p.proc.exitCode ?? p.proc.signalCode}): ${p.log().slice(-3000)}`);
    return true;
  };
  const health = () => request(nc, "risk.api.health").then((r) => r.data).catch(() => null);
  const owners = async () => (await health())?.owners ?? {};
  for (let round = 0; round < ROUNDS; round++) {
    await waitUntil(async () => {
      alive();
      const o = Object.values(await owners());
      return o.filter((x) => x === "a").length === 4 && o.filter((x) => x === "b").length === 4;
    }, 600000, "both instances owning 4 partitions");
    if (round === 0) summary.cluster_ready_s = (Date.now() - t0) / 1000;
    const since = Date.now();
    await waitUntil(() => alive() && new Set(alerts.filter(([t]) => t > since).map(([, k]) => k)).size === P, 120000, "every probe alerting");
    const o = await owners();
    const victimName = o["0"];
    const victim = victimName === "a" ? a : b;
    const lost = Object.entries(o).filter(([, n]) => n === victimName).map(([k]) => Number(k));
    const rss = { a: rssMiB(a.proc.pid), b: rssMiB(b.proc.pid) };
    const killed = Date.now();
    victim.killed = true;
    victim.kill9();
    await waitUntil(() => lost.every((k) => alerts.some(([t, p]) => p === k && t > killed + 50)), 120000, "alerts again from every lost partition");
    const back = lost.map((k) => alerts.find(([t, p]) => p === k && t > killed + 50)[0] - killed);
    const r = { killed: victimName, partitions: lost, kill_to_alert_ms: { first: Math.min(...back), all: Math.max(...back) }, rss_mib_before: rss };
    summary.rounds.push(r);
    console.error(`round ${round + 1}: ${JSON.stringify(r)}`);
    // Restart the victim with an empty state dir: it rejoins and gets its share back.
    const fresh = victimName === "a" ? "a" : "b";
    execFileSync("rm", ["-rf", join(dir, fresh, "state")]);
    if (fresh === "a") a = await start("a"); else b = await start("b");
  }
  const all = summary.rounds.map((r) => r.kill_to_alert_ms.all);
  summary.kill_to_alert_ms = { max: Math.max(...all), mean: all.reduce((x, y) => x + y, 0) / all.length };
  summary.floor_ms = { lease: LEASE_MS, note: "a partition passes on only once its lease has expired (--lease-ms after the last renewal)" };
  console.log(JSON.stringify(summary, null, 2));
} finally {
  ticking = false;
  for (const [n, p] of [["a", a], ["b", b]]) if (p) writeFileSync(join(process.env.VR_FAILOVER_LOGS ?? "/tmp", `failover-${n}.log`), p.log());
  await nc?.close().catch(() => {});
  for (const p of [a, b]) p?.proc.kill("SIGKILL");
  nats?.stop();
  cleanup(dir);
}
