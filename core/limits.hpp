// The numeric domain of every input (docs/service.md "Numeric limits"): chosen so
// that every derived value (prices, scenario values, equity, margins, their
// 18-decimal ABI words) is finite and fits its encoding. Anything outside is an
// out_of_range_error, rejected at the door before it changes any state.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>

#include "core/error.hpp"

namespace vaultrisk::limits {

// Spot, strike, perp trade and entry prices (USD per unit of the underlying).
inline constexpr double kMinPrice = 1e-8;
inline constexpr double kMaxPrice = 1e9;
// An option's trade price (premium): [0, kMaxPrice].
// Continuously compounded rate, per year: |rate| <= 0.5, so that a discount factor
// over any expiry up to kMaxExpiry stays below e^37.
inline constexpr double kMaxAbsRate = 0.5;
// Expiries and valuation times: whole unix seconds in [0, 2100-01-01).
inline constexpr double kMaxTime = 4102444800.0;
// SVI parameters: |a|, b, |m|, sigma <= 10 (total variance, not vol); |rho| <= 1.
inline constexpr double kMaxSvi = 10.0;
// Deposits and withdrawals: (0, 1e15] USD each.
inline constexpr double kMaxAmount = 1e15;
// A trade's quantity: 0 < |q| <= 1e9; a position after it: |q| <= 1e12.
inline constexpr double kMaxTradeQuantity = 1e9;
inline constexpr double kMaxPosition = 1e12;
// An account's cash after any event: |cash| <= 1e18 USD.
inline constexpr double kMaxCash = 1e18;
// Message sizes, checked before anything is parsed.
inline constexpr std::size_t kMaxTickBytes = 256 * 1024;
inline constexpr std::size_t kMaxEventBytes = 16 * 1024;
inline constexpr std::size_t kMaxRequestBytes = 4 * 1024;
// Event ids: 1..128 bytes of printable ASCII without spaces (0x21..0x7e).
inline constexpr std::size_t kMaxEventIdBytes = 128;

// Throws out_of_range_error "<where>: <x> is outside [lo, hi]" unless lo <= x <= hi
// (and x is finite).
void require_range(double x, double lo, double hi, const std::string& where);
// True for 1..kMaxEventIdBytes bytes of 0x21..0x7e.
bool valid_event_id(std::string_view id);

}  // namespace vaultrisk::limits
