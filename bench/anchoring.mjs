#!/usr/bin/env node
// Anchoring benchmarks, one run, ratios inside it:
//  1. the state tree of N accounts: vaultrisk (bench/bench_merkle.cpp, Google
//     Benchmark; its tree build is labelled with the root) against
//     @openzeppelin/merkle-tree's StandardMerkleTree.of on the same leaf values
//     (roots must be equal), and proof generation;
//  2. gas on a real anvil: deploy, anchor (first and steady state), verifyAccount
//     with a proof as deep as N's, verifyIntent.
// Usage: node bench/anchoring.mjs --bench-merkle build/bench/bench/vr_bench_merkle
//          --artifact build/bench/contracts/VaultriskAnchor.json [--accounts 1000000]
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ContractFactory, JsonRpcProvider, Wallet, hexlify, randomBytes } from "ethers";
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { ANVIL_KEYS, INTENT_TYPES, STATE_LEAF_TYPES, startAnvil } from "../tests/js/harness.mjs";

const arg = (k, d) => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1] : d; };
const N = Number(arg("accounts", 1000000));
const PROOFS = 1000;  // OpenZeppelin proofs timed
const dump = join(tmpdir(), `vr-leaves-${process.pid}.jsonl`);

// 1. Trees.
const gb = JSON.parse(execFileSync(arg("bench-merkle"), ["--accounts", String(N), "--dump", dump, "--benchmark_format=json"],
  { maxBuffer: 1 << 26 }).toString());
const bm = (name) => gb.benchmarks.find((b) => b.name.startsWith(name));
const ours = {
  threads: gb.context.num_cpus,
  tree_build_ms: bm("BM_Epoch_TreeBuild").real_time,
  root: bm("BM_Epoch_TreeBuild").label,
  proof_us: bm("BM_Epoch_Proof").real_time,
  capture_write_ms: bm("BM_Epoch_CaptureWrite").real_time,
};
const values = readFileSync(dump, "utf8").trim().split("\n").map((l) => [42, ...JSON.parse(l)]);
rmSync(dump);
let t0 = performance.now();
const tree = StandardMerkleTree.of(values, STATE_LEAF_TYPES);
const ozBuildMs = performance.now() - t0;
if (tree.root !== ours.root) throw new Error(`roots differ: OpenZeppelin ${tree.root} vs vaultrisk ${ours.root}`);
t0 = performance.now();
for (let k = 0; k < PROOFS; k++) tree.getProof((k * 7919) % N);
const ozProofUs = ((performance.now() - t0) * 1000) / PROOFS;

// 2. Gas.
const anvil = await startAnvil();
const provider = new JsonRpcProvider(anvil.url, undefined, { staticNetwork: true, cacheTimeout: -1 });
const poster = new Wallet(ANVIL_KEYS[0], provider);
const a = JSON.parse(readFileSync(arg("artifact"), "utf8"));
const factory = new ContractFactory(a.abi, a.bytecode, poster);
const c = await factory.deploy(poster.address);
const deployGas = (await c.deploymentTransaction().wait()).gasUsed;
const anchorGas = [];
for (let e = 1; e <= 10; e++) {
  const root = e === 1 ? tree.root : hexlify(randomBytes(32));
  anchorGas.push((await (await c.anchor(e, root, e % 2 ? hexlify(randomBytes(32)) : "0x" + "00".repeat(32), N)).wait()).gasUsed);
}
const [i0, v0] = [...tree.entries()][Math.floor(N / 2)];
const proof = tree.getProof(i0);
if (!(await c.verifyAccount(1, tree.leafHash(v0), proof))) throw new Error("proof did not verify on-chain");
const verifyGas = await c.verifyAccount.estimateGas(1, tree.leafHash(v0), proof);
const signer = Wallet.createRandom();
const domain = { name: "vaultrisk", version: "1", chainId: 31337, verifyingContract: await c.getAddress() };
const intent = { account: 17n, nonce: 1n, deadline: 1795000000n, epoch: 1n, equity: -(10n ** 21n), maintenanceMargin: 10n ** 22n, marketDigest: hexlify(randomBytes(32)) };
const sig = await signer.signTypedData(domain, INTENT_TYPES, intent);
const tuple = Object.values(intent);
if ((await c.verifyIntent(tuple, sig)) !== signer.address) throw new Error("verifyIntent");
const intentGas = await c.verifyIntent.estimateGas(tuple, sig);
provider.destroy();
await anvil.stop();

const steady = anchorGas.slice(1).map(Number).sort((x, y) => x - y);
console.log(JSON.stringify({ ours, oz: { tree_build_ms: ozBuildMs, proof_us: ozProofUs },
  gas: { deploy: Number(deployGas), first_anchor: Number(anchorGas[0]), anchor_median: steady[Math.floor(steady.length / 2)],
    verify_account: Number(verifyGas), verify_intent: Number(intentGas), proof_depth: proof.length } }, null, 2));
console.log(`\n| ${N.toLocaleString("en")} accounts | vaultrisk (${ours.threads} threads) | @openzeppelin/merkle-tree | ratio |`);
console.log("|---|---|---|---|");
console.log(`| state tree build (encode + hash + tree) | ${ours.tree_build_ms.toFixed(0)} ms | ${ozBuildMs.toFixed(0)} ms | ${(ozBuildMs / ours.tree_build_ms).toFixed(1)}x |`);
console.log(`| one proof | ${ours.proof_us.toFixed(1)} us | ${ozProofUs.toFixed(1)} us | ${(ozProofUs / ours.proof_us).toFixed(1)}x |`);
console.log(`| epoch capture written durably | ${ours.capture_write_ms.toFixed(0)} ms | | |`);
console.log(`\nGas: deploy ${deployGas}; anchor ${anchorGas[0]} (first), ${steady[Math.floor(steady.length / 2)]} (median of the next 9); ` +
  `verifyAccount ${verifyGas} (${proof.length}-hash proof); verifyIntent ${intentGas}.`);
