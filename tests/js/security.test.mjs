// NATS over TLS (issue #9, item 4): serve reaches a nats-server that requires TLS
// with --tls-ca (and fails, saying where, without it); --metrics-bind moves the
// /metrics listener. Certificates are made here with openssl for 127.0.0.1.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect } from "nats";
import { startServe, tempDir, cleanup, runOut, ORACLE, INTENT_KEY } from "./harness.mjs";

function makeCerts(dir) {
  const ssl = (...args) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
  ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=vaultrisk test CA", "-days", "2");
  ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1");
  writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem",
    "-days", "2", "-extfile", "san.ext");
  return { ca: join(dir, "ca.pem"), cert: join(dir, "server.pem"), key: join(dir, "server.key") };
}

async function startTlsNats(dir, certs) {
  writeFileSync(join(dir, "nats.conf"), `host: 127.0.0.1\nport: -1\njetstream { store_dir: "${join(dir, "js")}" }\n` +
    `tls { cert_file: "${certs.cert}"\n key_file: "${certs.key}" }\n`);
  const proc = spawn("nats-server", ["-c", join(dir, "nats.conf")], { stdio: ["ignore", "pipe", "pipe"] });
  const port = await new Promise((resolve, reject) => {
    let buf = "";
    const t = setTimeout(() => reject(new Error(`nats-server: ${buf}`)), 10000);
    proc.stderr.on("data", (d) => {
      buf += d;
      const m = buf.match(/Listening for client connections on [\d.]+:(\d+)/);
      if (m) { clearTimeout(t); resolve(m[1]); }
    });
  });
  return { proc, url: `tls://127.0.0.1:${port}`, stop: () => proc.kill("SIGKILL") };
}

test("serve talks to a TLS-only nats-server with --tls-ca, and refuses to start without it", { timeout: 60000 }, async () => {
  const dir = tempDir();
  const certs = makeCerts(dir);
  const nats = await startTlsNats(dir, certs);
  let serve;
  try {
    writeFileSync(join(dir, "intent.key"), INTENT_KEY + "\n");
    const plain = await runOut(["serve", "--nats", nats.url, "--state-dir", join(dir, "state0"), "--oracle-signers", ORACLE.address,
      "--signing-key", join(dir, "intent.key"), "--metrics-port", "-1"]);
    assert.notEqual(plain.code, 0, "serve started without trusting the server's certificate");
    assert.match(plain.stderr, /connect to tls:\/\/127\.0\.0\.1/);

    serve = await startServe({ url: nats.url, dir, extra: ["--tls-ca", certs.ca, "--metrics-bind", "127.0.0.1"] });
    assert.match(serve.log(), /metrics http:\/\/127\.0\.0\.1:\d+\/metrics/);
    const nc = await connect({ servers: nats.url, tls: { caFile: certs.ca } });
    const health = JSON.parse(new TextDecoder().decode((await nc.request("risk.api.health", new Uint8Array(0), { timeout: 5000 })).data));
    assert.equal(typeof health.vault_seq, "number");
    const metrics = await (await fetch(`http://127.0.0.1:${serve.metricsPort}/metrics`)).text();
    assert.match(metrics, /vaultrisk_ticks_accepted_total/);
    await nc.close();
  } finally {
    await serve?.stop();
    nats.stop();
    cleanup(dir);
  }
});
