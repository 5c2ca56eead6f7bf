#!/usr/bin/env node
// An example liquidator bot: follows vaultrisk's alerts and liquidation intents,
// verifies each intent's EIP-712 signature and digest independently (ethers), and
// prints what it would act on.
//
//   node examples/liquidator-bot.mjs [--nats URL] [--signer 0xADDR[,0xADDR...]] [--chain-id N] [--contract 0xADDR]
//
// --signer lists the addresses of vaultrisk's signing keys (a cluster has one per
// instance); intents signed by anyone else are refused. Nonces must increase per
// signer. --nats may list a cluster's servers, comma-separated, with user:pass@.
import { connect } from "nats";
import { TypedDataEncoder, verifyTypedData, formatUnits } from "ethers";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const url = arg("nats", "nats://127.0.0.1:4222");
const trusted = new Set(arg("signer", "").toLowerCase().split(",").filter(Boolean));
const domain = {
  name: "vaultrisk", version: "1", chainId: BigInt(arg("chain-id", "31337")),
  verifyingContract: arg("contract", "0x0000000000000000000000000000000000000000"),
};
const types = {
  LiquidationIntent: [
    { name: "account", type: "uint256" }, { name: "nonce", type: "uint64" }, { name: "deadline", type: "uint64" },
    { name: "epoch", type: "uint64" }, { name: "equity", type: "int256" }, { name: "maintenanceMargin", type: "uint256" },
    { name: "marketDigest", type: "bytes32" },
  ],
};

const nc = await connect({ servers: url.split(","), name: "liquidator-bot" });
console.log(`liquidator-bot on ${url}${trusted.size ? `, trusting intents from ${[...trusted].join(", ")}` : ""}`);
const dec = (m) => JSON.parse(new TextDecoder().decode(m.data));

(async () => {
  for await (const m of nc.subscribe("risk.alert.>")) {
    const a = dec(m);
    console.log(`alert   ${String(a.account).padStart(8)} ${a.prev_status} -> ${a.status}  equity ${a.equity.toFixed(2)}  mm ${a.mm.toFixed(2)}`);
  }
})();

// Intents: an ordered consumer on the INTENTS stream, from new messages on.
const js = nc.jetstream();
const consumer = await js.consumers.get("INTENTS", { deliver_policy: "new" });
const messages = await consumer.consume();
console.log("following stream INTENTS from new messages on");
const lastNonce = new Map();  // signer -> the last nonce seen
for await (const m of messages) {
  const { intent, digest, signature, signer } = dec(m);
  const ok_digest = TypedDataEncoder.hash(domain, types, intent) === digest;
  const recovered = verifyTypedData(domain, types, intent, signature).toLowerCase();
  const ok_signer = recovered === signer.toLowerCase() && (!trusted.size || trusted.has(recovered));
  const nonce = BigInt(intent.nonce), last = lastNonce.get(recovered) ?? -1n;
  const ok_nonce = nonce > last;
  if (ok_nonce) lastNonce.set(recovered, nonce);
  const verdict = ok_digest && ok_signer && ok_nonce ? "VERIFIED" : `REFUSED (digest ${ok_digest}, signer ${ok_signer}, nonce ${ok_nonce})`;
  console.log(`intent  ${intent.account.padStart(8)} nonce ${intent.nonce} equity ${formatUnits(intent.equity, 18)} < mm ` +
              `${formatUnits(intent.maintenanceMargin, 18)} deadline ${intent.deadline}  ${verdict}`);
}
