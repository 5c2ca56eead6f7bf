// The compiled anchor contract, generated at build time by contracts/compile.mjs
// from contracts/VaultriskAnchor.sol with the pinned solc-js.
#pragma once

namespace vaultrisk::chain {

extern const char* const kAnchorCompiler;
extern const char* const kAnchorBytecode;  // creation code, 0x-hex; constructor(address poster)

}  // namespace vaultrisk::chain
