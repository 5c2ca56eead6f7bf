// SPDX-License-Identifier: MIT
// vaultrisk anchor (SPEC §7): one record per epoch of the service's decisions, the
// Merkle root of every account's state and of the liquidation intents it signed, so
// that anyone can check their own account or an intent against the chain.
pragma solidity 0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

contract VaultriskAnchor is EIP712 {
    struct Anchor {
        bytes32 stateRoot;
        bytes32 intentsRoot;  // zero when the epoch emitted no intent
        uint32 accountCount;
        uint64 anchoredAt;    // block timestamp
    }

    struct LiquidationIntent {
        uint256 account;
        uint64 nonce;
        uint64 deadline;
        uint64 epoch;
        int256 equity;
        uint256 maintenanceMargin;
        bytes32 marketDigest;
    }

    bytes32 public constant LIQUIDATION_INTENT_TYPEHASH = keccak256(
        "LiquidationIntent(uint256 account,uint64 nonce,uint64 deadline,uint64 epoch,int256 equity,"
        "uint256 maintenanceMargin,bytes32 marketDigest)"
    );

    address public immutable poster;
    uint64 public lastEpoch;
    mapping(uint64 epoch => Anchor) public anchors;

    event Anchored(uint64 indexed epoch, bytes32 stateRoot, bytes32 intentsRoot, uint32 accountCount);

    error NotPoster(address caller);
    error EpochNotIncreasing(uint64 epoch, uint64 lastEpoch);

    constructor(address poster_) EIP712("vaultrisk", "1") {
        poster = poster_;
    }

    /// Records an epoch. Only the poster may, and epochs strictly increase.
    function anchor(uint64 epoch, bytes32 stateRoot, bytes32 intentsRoot, uint32 accountCount) external {
        if (msg.sender != poster) revert NotPoster(msg.sender);
        if (epoch <= lastEpoch) revert EpochNotIncreasing(epoch, lastEpoch);
        lastEpoch = epoch;
        anchors[epoch] = Anchor(stateRoot, intentsRoot, accountCount, uint64(block.timestamp));
        emit Anchored(epoch, stateRoot, intentsRoot, accountCount);
    }

    /// True when `leaf` (a StandardMerkleTree leaf hash) is in the epoch's state tree.
    function verifyAccount(uint64 epoch, bytes32 leaf, bytes32[] calldata proof) external view returns (bool) {
        bytes32 root = anchors[epoch].stateRoot;
        return root != bytes32(0) && MerkleProof.verifyCalldata(proof, root, leaf);
    }

    /// The state leaf of SPEC §7, for checking an account from its values alone.
    function stateLeaf(uint64 epoch, uint256 account, int256 equity, uint256 mm, uint256 im, uint8 status)
        public
        pure
        returns (bytes32)
    {
        return keccak256(bytes.concat(keccak256(abi.encode(epoch, account, equity, mm, im, status))));
    }

    /// verifyAccount from the account's values: computes the leaf on-chain.
    function verifyAccountState(
        uint64 epoch,
        uint256 account,
        int256 equity,
        uint256 mm,
        uint256 im,
        uint8 status,
        bytes32[] calldata proof
    ) external view returns (bool) {
        bytes32 root = anchors[epoch].stateRoot;
        return root != bytes32(0)
            && MerkleProof.verifyCalldata(proof, root, stateLeaf(epoch, account, equity, mm, im, status));
    }

    /// True when the intent digest is among those anchored for the epoch.
    function verifyIntentIncluded(uint64 epoch, bytes32 digest, bytes32[] calldata proof) external view returns (bool) {
        bytes32 root = anchors[epoch].intentsRoot;
        return root != bytes32(0)
            && MerkleProof.verifyCalldata(proof, root, keccak256(bytes.concat(keccak256(abi.encode(digest)))));
    }

    /// The EIP-712 digest the service signs for `intent` (domain: this contract, this chain).
    function intentDigest(LiquidationIntent calldata intent) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    LIQUIDATION_INTENT_TYPEHASH,
                    intent.account,
                    intent.nonce,
                    intent.deadline,
                    intent.epoch,
                    intent.equity,
                    intent.maintenanceMargin,
                    intent.marketDigest
                )
            )
        );
    }

    /// The address that signed `intent`, or the zero address for a malformed signature.
    function verifyIntent(LiquidationIntent calldata intent, bytes calldata signature) external view returns (address) {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(intentDigest(intent), signature);
        return err == ECDSA.RecoverError.NoError ? signer : address(0);
    }
}
