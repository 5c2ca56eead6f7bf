// The anchor contract (contracts/VaultriskAnchor.sol, as compiled by the build)
// against a real anvil, driven by ethers; roots and proofs from OpenZeppelin's own
// @openzeppelin/merkle-tree, intents signed by ethers' EIP-712 implementation.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ContractFactory, JsonRpcProvider, Wallet, ZeroAddress, ZeroHash, hexlify, randomBytes } from "ethers";
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { ANVIL_KEYS, INTENT_TYPES, STATE_LEAF_TYPES, artifact, startAnvil } from "./harness.mjs";

const LEAF = STATE_LEAF_TYPES;
let anvil, provider, poster, stranger, contract;

function randomLeaves(epoch, n) {
  const values = [];
  for (let i = 0; i < n; i++) {
    const equity = BigInt(Math.floor((Math.random() - 0.3) * 1e9)) * 10n ** 12n;
    const mm = BigInt(Math.floor(Math.random() * 1e9)) * 10n ** 12n;
    values.push([epoch, BigInt(i * 7919 + 1), equity, mm, (mm * 3n) / 2n, i % 3]);
  }
  return values;
}

async function revertName(promise) {
  try {
    await promise;
  } catch (e) {
    if (e.revert?.name) return e.revert.name;
    const data = e.data ?? e.info?.error?.data;
    const parsed = data ? contract.interface.parseError(data) : null;
    return parsed?.name ?? `${e.shortMessage} ${JSON.stringify(e.info ?? {})}`;
  }
  return "no revert";
}

before(async () => {
  anvil = await startAnvil();
  provider = new JsonRpcProvider(anvil.url, undefined, { staticNetwork: true, pollingInterval: 50, cacheTimeout: -1 });
  poster = new Wallet(ANVIL_KEYS[0], provider);
  stranger = new Wallet(ANVIL_KEYS[1], provider);
  const a = artifact();
  contract = await new ContractFactory(a.abi, a.bytecode, poster).deploy(await poster.getAddress());
  await contract.waitForDeployment();
});

after(async () => {
  provider?.destroy();
  await anvil?.stop();
});

test("anchors epochs in order, and OpenZeppelin proofs verify against them", async () => {
  const trees = {};
  for (const [epoch, n] of [[1, 1], [2, 17], [5, 300]]) {
    const tree = StandardMerkleTree.of(randomLeaves(epoch, n), LEAF);
    trees[epoch] = tree;
    const tx = await contract.anchor(epoch, tree.root, ZeroHash, n);
    const receipt = await tx.wait();
    const ev = receipt.logs.map((l) => contract.interface.parseLog(l)).find((e) => e?.name === "Anchored");
    assert.deepEqual([ev.args.epoch, ev.args.stateRoot, ev.args.intentsRoot, ev.args.accountCount], [BigInt(epoch), tree.root, ZeroHash, BigInt(n)]);
  }
  assert.equal(await contract.lastEpoch(), 5n);
  const rec = await contract.anchors(2);
  assert.equal(rec.stateRoot, trees[2].root);
  assert.equal(rec.accountCount, 17n);
  for (const [epoch, tree] of Object.entries(trees)) {
    for (const [i, v] of tree.entries()) {
      if (i % 23 !== 0 && i !== tree.length - 1) continue;
      const proof = tree.getProof(i);
      assert.equal(await contract.verifyAccount(epoch, tree.leafHash(v), proof), true, `epoch ${epoch} leaf ${i}`);
      assert.equal(await contract.verifyAccountState(epoch, v[1], v[2], v[3], v[4], v[5], proof), true);
      assert.equal(await contract.stateLeaf(...v), tree.leafHash(v));
      // A changed value, another epoch or an epoch never anchored: not verified.
      assert.equal(await contract.verifyAccountState(epoch, v[1], v[2] + 1n, v[3], v[4], v[5], proof), false);
      assert.equal(await contract.verifyAccount(3, tree.leafHash(v), proof), false);
    }
  }
});

test("only the poster may anchor, and epochs must strictly increase", async () => {
  const root = hexlify(randomBytes(32));
  assert.equal(await revertName(contract.connect(stranger).anchor(9, root, ZeroHash, 1)), "NotPoster");
  assert.equal(await revertName(contract.anchor(5, root, ZeroHash, 1)), "EpochNotIncreasing");
  assert.equal(await revertName(contract.anchor(4, root, ZeroHash, 1)), "EpochNotIncreasing");
  assert.equal(await contract.lastEpoch(), 5n);
  assert.notEqual((await contract.anchors(5)).stateRoot, root);
  await (await contract.anchor(6, root, ZeroHash, 1)).wait();
  assert.equal(await contract.lastEpoch(), 6n);
});

test("verifyIntent recomputes the EIP-712 digest on-chain and recovers the signer", async () => {
  const signer = Wallet.createRandom();
  const domain = { name: "vaultrisk", version: "1", chainId: 31337, verifyingContract: await contract.getAddress() };
  const digests = [];
  for (let k = 0; k < 8; k++) {
    const intent = {
      account: BigInt(k * 1000 + 17), nonce: BigInt(k), deadline: 1795000000n + BigInt(k), epoch: 7n,
      equity: -123456789012345678901n * BigInt(k + 1), maintenanceMargin: 987654321098765432109n,
      marketDigest: hexlify(randomBytes(32)),
    };
    const sig = await signer.signTypedData(domain, INTENT_TYPES, intent);
    const tuple = [intent.account, intent.nonce, intent.deadline, intent.epoch, intent.equity, intent.maintenanceMargin, intent.marketDigest];
    assert.equal(await contract.verifyIntent(tuple, sig), signer.address);
    const { TypedDataEncoder } = await import("ethers");
    const digest = TypedDataEncoder.hash(domain, INTENT_TYPES, intent);
    assert.equal(await contract.intentDigest(tuple), digest);
    digests.push(digest);
    // Any changed field recovers someone else; a malformed signature recovers no one.
    const tampered = [...tuple];
    tampered[4] = tampered[4] + 1n;
    assert.notEqual(await contract.verifyIntent(tampered, sig), signer.address);
    assert.equal(await contract.verifyIntent(tuple, "0x" + "00".repeat(65)), ZeroAddress);
  }
  // The epoch's intents root: a StandardMerkleTree of type ["bytes32"] over the digests.
  const tree = StandardMerkleTree.of(digests.map((d) => [d]), ["bytes32"]);
  await (await contract.anchor(7, hexlify(randomBytes(32)), tree.root, 1)).wait();
  for (const [i, v] of tree.entries()) assert.equal(await contract.verifyIntentIncluded(7, v[0], tree.getProof(i)), true);
  assert.equal(await contract.verifyIntentIncluded(7, hexlify(randomBytes(32)), tree.getProof(0)), false);
});
