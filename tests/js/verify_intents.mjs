// Independent check of vaultrisk's EIP-712 intents and EIP-191 signatures (ethers) and
// of its StandardMerkleTree roots and proofs (@openzeppelin/merkle-tree).
//   node tests/js/verify_intents.mjs CASES.json
// CASES.json: {"intents": [{domain, intent, digest, signature, signer}], "messages": [{message, signature, signer}]}
import { readFileSync } from "node:fs";
import { Interface, Transaction, TypedDataEncoder, getCreateAddress, verifyTypedData, verifyMessage } from "ethers";
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { INTENT_TYPES as types, STATE_LEAF_TYPES as LEAF } from "./harness.mjs";

const cases = JSON.parse(readFileSync(process.argv[2], "utf8"));
let passed = 0, failed = 0;
const check = (ok, what) => { if (ok) passed++; else { failed++; console.error("FAIL:", what); } };

for (const c of cases.intents) {
  const domain = { name: "vaultrisk", version: "1", chainId: BigInt(c.domain.chainId), verifyingContract: c.domain.verifyingContract };
  const digest = TypedDataEncoder.hash(domain, types, c.intent);
  check(digest === c.digest, `digest ${JSON.stringify(c.intent)}: ethers ${digest} vs ${c.digest}`);
  const signer = verifyTypedData(domain, types, c.intent, c.signature).toLowerCase();
  check(signer === c.signer, `intent signer ${signer} vs ${c.signer}`);
  const v = parseInt(c.signature.slice(130, 132), 16);
  check(v === 27 || v === 28, `v = ${v}`);
}
for (const m of cases.messages) {
  const signer = verifyMessage(m.message, m.signature).toLowerCase();
  check(signer === m.signer, `message signer ${signer} vs ${m.signer}`);
}
// State trees: OpenZeppelin's own implementation must give the same root and proofs.
for (const t of cases.trees ?? []) {
  const tree = StandardMerkleTree.of(t.values, LEAF);
  check(tree.root === t.root, `root of ${t.values.length} leaves: OpenZeppelin ${tree.root} vs ${t.root}`);
  for (const p of t.proofs) {
    check(tree.leafHash(t.values[p.index]) === p.leaf, `leaf hash ${p.index}`);
    check(JSON.stringify(tree.getProof(p.index)) === JSON.stringify(p.proof), `proof of leaf ${p.index} in ${t.values.length}`);
    check(StandardMerkleTree.verify(t.root, LEAF, t.values[p.index], p.proof), `verify leaf ${p.index}`);
  }
}
// EIP-1559 transactions: ethers parses ours and recovers the same sender and hash.
for (const t of cases.transactions ?? []) {
  const tx = Transaction.from(t.raw);
  check(tx.type === 2, `type ${tx.type}`);
  check(tx.from.toLowerCase() === t.from, `tx sender ${tx.from} vs ${t.from}`);
  check(tx.hash === t.hash, `tx hash ${tx.hash} vs ${t.hash}`);
  for (const f of ["chainId", "nonce", "maxPriorityFeePerGas", "maxFeePerGas", "gasLimit", "value"])
    check(BigInt(tx[f]) === BigInt(t[f]), `tx ${f}: ${tx[f]} vs ${t[f]}`);
  check((tx.to ? tx.to.toLowerCase() : null) === t.to, `tx to ${tx.to} vs ${t.to}`);
  check(tx.data === t.data, `tx data`);
  check(tx.accessList.length === 0, `empty access list`);
  check(getCreateAddress({ from: t.from, nonce: BigInt(t.nonce) }).toLowerCase() === t.createAddress, `create address`);
}
// Calldata of the anchor contract, against ethers' ABI coder and the compiled ABI.
if (process.argv[3]) {
  const iface = new Interface(JSON.parse(readFileSync(process.argv[3], "utf8")).abi);
  for (const c of cases.calls ?? []) {
    check(iface.encodeFunctionData("anchor", [c.epoch, c.a, c.b, c.count]) === c.anchor, `anchor calldata`);
    check(iface.encodeFunctionData("verifyAccount", [c.epoch, c.a, c.proof]) === c.verifyAccount, `verifyAccount calldata`);
    check(iface.encodeFunctionData("verifyIntent", [c.intent, c.signature]) === c.verifyIntent, `verifyIntent calldata`);
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
