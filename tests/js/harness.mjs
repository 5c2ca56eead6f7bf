// Test harness: a real nats-server (JetStream) on a free loopback port, vaultrisk
// serve processes, and ethers-signed oracle ticks. Everything stops at the end.
import { spawn } from "node:child_process";
import { connect as tcpConnect, createServer } from "node:net";
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync, rmSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { connect, headers } from "nats";
import { Wallet } from "ethers";

export const VAULTRISK = process.env.VAULTRISK;
export const ORACLE = new Wallet("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318");
export const INTENT_KEY = "0x0000000000000000000000000000000000000000000000000000000000000002";
export const INTENT_SIGNER = new Wallet(INTENT_KEY).address.toLowerCase();

// The EIP-712 type of SPEC §7's intents, and the types of a state leaf's values.
export const INTENT_TYPES = {
  LiquidationIntent: [
    { name: "account", type: "uint256" }, { name: "nonce", type: "uint64" }, { name: "deadline", type: "uint64" },
    { name: "epoch", type: "uint64" }, { name: "equity", type: "int256" }, { name: "maintenanceMargin", type: "uint256" },
    { name: "marketDigest", type: "bytes32" },
  ],
};
export const STATE_LEAF_TYPES = ["uint64", "uint256", "int256", "uint256", "uint256", "uint8"];

// True under scripts/sanitize: ASan's quarantine holds freed memory back (256 MB),
// so resident-memory bounds are not meaningful there and are not asserted.
export const SANITIZED = process.env.VR_SANITIZED === "1";

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function tempDir() {
  return mkdtempSync(join(tmpdir(), "vr-it-"));
}

// Resolves when `pattern` appears in the stream; rejects after `ms`.
function waitFor(stream, pattern, ms, what) {
  return new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}: ${buf.slice(-2000)}`)), ms);
    stream.on("data", (d) => {
      buf += d.toString();
      const m = buf.match(pattern);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
  });
}

export async function startNats(dir, { maxPayload } = {}) {
  const args = ["-js", "-a", "127.0.0.1", "-p", "-1", "-sd", join(dir, "js")];
  if (maxPayload) {  // no flag for it: a one-line config file
    writeFileSync(join(dir, "nats.conf"), `max_payload: ${maxPayload}\n`);
    args.push("-c", join(dir, "nats.conf"));
  }
  const proc = spawn("nats-server", args, { stdio: ["ignore", "pipe", "pipe"] });
  const m = await waitFor(proc.stderr, /Listening for client connections on [\d.]+:(\d+)/, 10000, "nats-server");
  const url = `nats://127.0.0.1:${m[1]}`;
  return { proc, url, stop: () => proc.kill("SIGKILL") };
}

// A book of BTC perps, one position per account, and its market (BTC at 100, as of
// `time`): rows of { account, cash, quantity, entry }. Returns the book folder.
export function writePerpBook(dir, rows, { time = Math.floor(Date.now() / 1000) } = {}) {
  const book = join(dir, "book");
  mkdirSync(book, { recursive: true });
  writeFileSync(join(book, "instruments.csv"), "id,kind,underlying,expiry,strike,type\nBTC-PERP,perp,BTC,,,\n");
  let acc = "account,cash\n", pos = "account,instrument,quantity,entry_price\n";
  for (const r of rows) {
    acc += `${r.account},${r.cash}\n`;
    pos += `${r.account},BTC-PERP,${r.quantity},${r.entry}\n`;
  }
  writeFileSync(join(book, "accounts.csv"), acc);
  writeFileSync(join(book, "positions.csv"), pos);
  writeFileSync(join(book, "market.json"), JSON.stringify({ time, underlyings: { BTC: { spot: 100, expiries: [] } } }));
  return book;
}

// Free loopback ports, found by binding port 0 (several at once, so all differ).
export async function freePorts(n) {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => resolve(srv));
  })));
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export const REPO = join(dirname(new URL(import.meta.url).pathname), "..", "..");

// A JetStream cluster of `n` real nats-servers (n = 1: one server, no cluster) on loopback, routed to each other,
// with the shipped partition mapping (deploy/nats/partitions.conf) and, optionally,
// extra configuration text (users and permissions). Only the first `start` nodes
// run at first (nodes[i].start() starts the others). Resolves once JetStream has a
// metadata leader, which is not yet a cluster that can place R3 streams.
// `url` lists every node, as clients are given it.
export async function startNatsCluster(dir, n = 3, { extra = "", start = n } = {}) {
  for (const f of ["partitions.conf", "users.conf"]) copyFileSync(join(REPO, "deploy", "nats", f), join(dir, f));
  const ports = await freePorts(2 * n);
  const client = ports.slice(0, n), route = ports.slice(n);
  const routes = route.map((p) => `nats-route://127.0.0.1:${p}`).join(", ");
  const nodes = [];
  for (let i = 0; i < n; i++) {
    const conf = join(dir, `node${i}.conf`);
    writeFileSync(conf, `listen: 127.0.0.1:${client[i]}\nserver_name: n${i}\n` +
      `jetstream { store_dir: "${join(dir, `js${i}`)}" }\n` +
      (n > 1 ? `cluster { name: vaultrisk, listen: 127.0.0.1:${route[i]}, routes: [${routes}] }\n` : "") +
      `include ./partitions.conf\n${extra}\n`);
    const node = { url: `nats://127.0.0.1:${client[i]}`, proc: null, log: () => "", kill9: () => node.proc?.kill("SIGKILL") };
    node.start = () => {
      const proc = spawn("nats-server", ["-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
      let log = "";
      proc.stderr.on("data", (d) => { log += d.toString(); });
      Object.assign(node, { proc, log: () => log });
    };
    nodes.push(node);
  }
  nodes.slice(0, start).forEach((x) => x.start());
  const up = n > 1 ? /JetStream cluster new metadata leader|Self is new JetStream cluster metadata leader/ : /Server is ready/;
  await waitUntil(() => nodes.some((x) => up.test(x.log())), 30000, n > 1 ? "a JetStream metadata leader" : "nats-server");
  return { nodes, url: nodes.map((x) => x.url).join(","), stop: () => nodes.forEach((x) => x.kill9()) };
}

// anvil from npm (@foundry-rs/anvil, pinned in package-lock.json): the platform
// binary itself, so that signals reach it. `port` 0 picks a free one; `state` makes
// the chain survive a restart (dumped on SIGTERM, loaded at start).
export function anvilBinary() {
  const arch = { x64: "amd64", arm64: "arm64" }[process.arch];
  const pkg = createRequire(import.meta.url).resolve(`@foundry-rs/anvil-${process.platform}-${arch}/package.json`);
  return join(dirname(pkg), "bin", "anvil");
}

export const ANVIL_KEYS = [
  "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
  "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
];

export async function startAnvil({ port = 0, state } = {}) {
  const args = ["--host", "127.0.0.1", "--port", String(port)];
  if (state) args.push("--state", state);
  const proc = spawn(anvilBinary(), args, { stdio: ["ignore", "pipe", "pipe"] });
  const m = await waitFor(proc.stdout, /Listening on 127\.0\.0\.1:(\d+)/, 20000, "anvil");
  const p = Number(m[1]);
  const exited = new Promise((r) => proc.once("exit", r));
  return { proc, port: p, url: `http://127.0.0.1:${p}`, stop: () => { proc.kill("SIGTERM"); return exited; } };
}

// `vaultrisk deploy-anchor`; resolves with the contract's address.
export async function deployAnchor(rpcUrl, keyFile) {
  const d = await runOut(["deploy-anchor", "--rpc", rpcUrl, "--key", keyFile]);
  if (d.code !== 0) throw new Error(`deploy-anchor failed: ${d.stderr}`);
  return JSON.parse(d.stdout).contract;
}

export function artifact() {
  return JSON.parse(readFileSync(process.env.VR_ANCHOR_ARTIFACT, "utf8"));
}

// Runs vaultrisk and resolves with { code, stdout, stderr }.
export function runOut(args, input) {
  return new Promise((resolve) => {
    const p = spawn(VAULTRISK, args, { stdio: ["pipe", "pipe", "pipe"] });
    let out = "", err = "";
    p.stdout.on("data", (d) => { out += d; });
    p.stderr.on("data", (d) => { err += d; });
    p.on("exit", (code) => resolve({ code, stdout: out, stderr: err }));
    p.stdin.end(input ?? "");
  });
}

export async function startServe({ url, dir, book, market, extra = [] }) {
  writeFileSync(join(dir, "intent.key"), INTENT_KEY + "\n");
  const args = ["serve", "--nats", url, "--state-dir", join(dir, "state"), "--oracle-signers", ORACLE.address,
    "--signing-key", join(dir, "intent.key"), "--metrics-port", "0", "--max-tick-age-ms", "5000", ...extra];
  if (book) args.push("--book", book);
  if (market) args.push("--market", market);
  const proc = spawn(VAULTRISK, args, { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  proc.stderr.on("data", (d) => { log += d.toString(); });
  // "close": after the process's output has been read to the end, so the error is in the message.
  const exited = new Promise((_, reject) => proc.once("close", (code) => reject(new Error(`vaultrisk serve exited (${code}): ${log}`))));
  await Promise.race([waitFor(proc.stdout, /ready/, 30000, "vaultrisk serve"), exited]);
  const metricsPort = (log.match(/metrics http:\/\/127\.0\.0\.1:(\d+)/) || [])[1];
  const metrics = async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  return { proc, log: () => log, metricsPort, metrics, kill9: () => proc.kill("SIGKILL"),
    stop: () => new Promise((r) => { proc.once("exit", r); proc.kill("SIGTERM"); }) };
}

export function run(args) {
  return new Promise((resolve, reject) => {
    const p = spawn(VAULTRISK, args, { stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    p.stderr.on("data", (d) => { err += d; });
    p.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`vaultrisk ${args.join(" ")}: ${err}`))));
  });
}

// A tick body as an oracle would publish it, signed with EIP-191 by `wallet`.
export async function signedTick(underlying, seq, spot, { wallet = ORACLE, timeMs = Date.now(), expiries = [], rate = 0 } = {}) {
  const body = JSON.stringify({ underlying, seq, time_ms: timeMs, spot, rate, confidence: 1, expiries });
  return { body, signature: await wallet.signMessage(body) };
}

export async function publishTick(nc, underlying, tick, signature = tick.signature) {
  const h = headers();
  h.set("Vaultrisk-Signature", signature);
  nc.publish(`oracle.tick.${underlying}`, new TextEncoder().encode(tick.body), { headers: h });
  await nc.flush();
}

// Collects JSON messages on `subject` until stopped.
export function collect(nc, subject) {
  const out = [];
  const sub = nc.subscribe(subject);
  (async () => {
    for await (const m of sub) out.push({ subject: m.subject, data: JSON.parse(new TextDecoder().decode(m.data)) });
  })();
  return { out, stop: () => sub.unsubscribe() };
}

export async function waitUntil(cond, ms = 10000, what = "condition") {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}

export async function request(nc, subject, body = {}) {
  const m = await nc.request(subject, new TextEncoder().encode(JSON.stringify(body)), { timeout: 5000 });
  return { data: JSON.parse(new TextDecoder().decode(m.data)), headers: m.headers };
}

export async function natsConnect(url, opts = {}) {
  return connect({ servers: url.split(","), ...opts });
}

export function cleanup(dir) {
  rmSync(dir, { recursive: true, force: true });
}

// Publishes with the raw client protocol (HPUB), so that a test can send what no
// well-behaved client would: header values that are not UTF-8, for one.
export function rawPublish(url, subject, payload, hdrs = {}) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = tcpConnect(Number(port), hostname);
    let got = "";
    sock.on("error", reject);
    sock.on("data", (d) => {
      got += d.toString("latin1");
      if (got.startsWith("INFO") && !sock.sent) {
        sock.sent = true;
        const parts = [Buffer.from("NATS/1.0\r\n")];
        for (const [k, v] of Object.entries(hdrs)) parts.push(Buffer.from(`${k}: `), Buffer.from(v), Buffer.from("\r\n"));
        parts.push(Buffer.from("\r\n"));
        const h = Buffer.concat(parts);
        sock.write(`CONNECT {"verbose":false,"pedantic":false,"headers":true,"protocol":1}\r\n`);
        sock.write(Buffer.concat([Buffer.from(`HPUB ${subject} ${h.length} ${h.length + payload.length}\r\n`), h, payload, Buffer.from("\r\nPING\r\n")]));
      }
      if (/PONG\r\n/.test(got)) { sock.end(); resolve(); }
      if (/-ERR/.test(got)) { sock.end(); reject(new Error(got)); }
    });
  });
}

// Resident memory of a process, in MiB (Linux).
export function rssMiB(pid) {
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) / 1024 : NaN;
}
