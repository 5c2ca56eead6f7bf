// docker-compose.yml for real (issue #9), driven by scripts/compose-test: the
// cluster of the compose file balances; a crash from the oracle simulator gives
// alerts to the liquidator's user and signed intents in INTENTS that verify; a vault
// event from the indexer's user is applied by exactly one instance; an epoch over
// every account is anchored and verify-epoch agrees; Prometheus scrapes both
// instances; kill -9 of a vaultrisk container hands its partitions to the other,
// and alerts flow again from them.
import { execFileSync } from "node:child_process";
import assert from "node:assert/strict";
import { connect } from "nats";
import { Contract, JsonRpcProvider, Wallet, verifyTypedData } from "ethers";

const env = (k) => { if (!process.env[k]) throw new Error(`${k} is not set`); return process.env[k]; };
const NATS = `127.0.0.1:${env("VR_NATS_PORT")}`, ANVIL = `http://127.0.0.1:${env("VR_ANVIL_PORT")}`;
const METRICS = [env("VR_METRICS_1"), env("VR_METRICS_2")], PROM = `http://127.0.0.1:${env("VR_PROMETHEUS_PORT")}`;
const COMPOSE = JSON.parse(env("VR_COMPOSE"));  // the docker-compose command, as an array
const CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const SIGNERS = ["0x0000000000000000000000000000000000000000000000000000000000000002",
  "0x0000000000000000000000000000000000000000000000000000000000000003"].map((k) => new Wallet(k).address.toLowerCase());
const P = 8;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error("[compose-test]", ...a);
async function waitUntil(cond, ms, what) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try { if (await cond()) return; } catch { /* not yet */ }
    await sleep(250);
  }
  throw new Error(`timed out (${ms / 1000} s) waiting for ${what}`);
}
const compose = (...args) => execFileSync(COMPOSE[0], [...COMPOSE.slice(1), ...args], { stdio: ["ignore", "pipe", "inherit"] }).toString();
const partitionOf = (account) => {
  let h = 2166136261;
  for (const c of Buffer.from(String(account))) h = Math.imul(h ^ c, 16777619) >>> 0;
  return h % P;
};
const metric = async (port, name) => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return [...text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? ([0-9.e+-]+)$`, "gm"))].map((m) => [m[1] ?? "", Number(m[2])]);
};

const as = (user) => connect({ servers: NATS, user, pass: `${user}-pw` });
const [user, liquidator, indexer] = await Promise.all([as("user"), as("liquidator"), as("indexer")]);
const request = async (subject, body) =>
  JSON.parse(new TextDecoder().decode((await user.request(subject, new TextEncoder().encode(JSON.stringify(body ?? {})), { timeout: 5000 })).data));
const alerts = [];
(async () => {
  for await (const m of liquidator.subscribe("risk.alert.>")) alerts.push({ t: Date.now(), ...JSON.parse(new TextDecoder().decode(m.data)) });
})();
const owners = async () => Object.values((await request("risk.api.health")).owners);

log("waiting for the two instances to share the 8 partitions");
await waitUntil(async () => {
  const o = await owners();
  return o.filter((x) => x === "vr-1").length === 4 && o.filter((x) => x === "vr-2").length === 4;
}, 300000, "4 partitions on each instance");

log("a crash from the oracle simulator");
compose("stop", "oracle-sim");
compose("run", "-d", "--name", "vr-compose-crash", "oracle-sim", "oracle-sim", "--nats", "nats://oracle:oracle-pw@nats-1:4222",
  "--market", "/data/book/market.json", "--key", "/etc/vaultrisk/keys/oracle.key", "--rate", "2", "--crash-at", "1", "--crash-size", "0.5");
await waitUntil(() => alerts.some((a) => a.status === "liquidatable"), 60000, "liquidatable alerts");
const jsm = await liquidator.jetstreamManager();
await waitUntil(async () => (await jsm.streams.info("INTENTS")).state.messages > 0, 60000, "intents in INTENTS");
const info = await jsm.streams.info("INTENTS");
const domain = { name: "vaultrisk", version: "1", chainId: 31337n, verifyingContract: CONTRACT };
const types = { LiquidationIntent: [
  { name: "account", type: "uint256" }, { name: "nonce", type: "uint64" }, { name: "deadline", type: "uint64" },
  { name: "epoch", type: "uint64" }, { name: "equity", type: "int256" }, { name: "maintenanceMargin", type: "uint256" },
  { name: "marketDigest", type: "bytes32" }] };
for (const seq of [info.state.first_seq, info.state.last_seq]) {
  const body = JSON.parse(new TextDecoder().decode((await jsm.streams.getMessage("INTENTS", { seq })).data));
  const signer = verifyTypedData(domain, types, body.intent, body.signature).toLowerCase();
  assert.ok(SIGNERS.includes(signer), `intent ${seq} signed by ${signer}`);
}
log(`${alerts.length} alerts, ${info.state.messages} intents; signatures verify`);

log("a deposit from the indexer is applied by exactly one instance");
const applied = async () => {
  let n = 0;
  for (const port of METRICS) for (const [l, v] of await metric(port, "vaultrisk_vault_events_total")) if (l.includes('"applied"')) n += v;
  return n;
};
const before = await applied();
const js = indexer.jetstream();
await js.publish("vault.event.deposit.17", new TextEncoder().encode(JSON.stringify({ id: "compose-d-17", account: 17, amount: 250 })), { msgID: "compose-d-17" });
await waitUntil(async () => (await applied()) === before + 1, 30000, "the deposit applied once");

log("an epoch anchored over every account");
const provider = new JsonRpcProvider(ANVIL, undefined, { staticNetwork: true });
const contract = new Contract(CONTRACT, ["function lastEpoch() view returns (uint64)",
  "function anchors(uint64) view returns (bytes32 stateRoot, bytes32 intentsRoot, uint32 accountCount, uint64 anchoredAt)"], provider);
await waitUntil(async () => (await contract.lastEpoch()) > 0n, 120000, "an anchored epoch");
const epoch = await contract.lastEpoch();
const accounts = Number((await contract.anchors(epoch)).accountCount);
assert.ok(accounts >= 1000, `epoch ${epoch} covers ${accounts} accounts`);
const verify = execFileSync(env("VAULTRISK"), ["verify-epoch", "--epoch", String(epoch), "--nats", `nats://vaultrisk:vaultrisk-pw@${NATS}`,
  "--rpc", ANVIL, "--contract", CONTRACT]).toString();
assert.match(verify, /match the published summary/);
log(`epoch ${epoch} anchored with ${accounts} accounts; verify-epoch agrees`);

log("Prometheus scrapes both instances");
await waitUntil(async () => {
  const r = await (await fetch(`${PROM}/api/v1/query?query=vaultrisk_partitions_owned`)).json();
  return r.data.result.length === 2;
}, 60000, "vaultrisk_partitions_owned from both instances in Prometheus");

log("kill -9 of vr-1");
const health = await request("risk.api.health");
const lost = Object.entries(health.owners).filter(([, o]) => o === "vr-1").map(([k]) => Number(k));
const killed = Date.now();
compose("kill", "-s", "SIGKILL", "vr-1");
await waitUntil(() => alerts.some((a) => a.t > killed + 100 && lost.includes(partitionOf(a.account))), 120000,
  "alerts again from vr-1's partitions");
log(`alerts from vr-1's partitions again ${Date.now() - killed} ms after the kill`);
const h2 = await request("risk.api.health");
assert.ok(lost.every((k) => h2.owners[String(k)]), "every partition has an owner");
await Promise.all([user.close(), liquidator.close(), indexer.close()]);
provider.destroy();
log("all checks passed");
