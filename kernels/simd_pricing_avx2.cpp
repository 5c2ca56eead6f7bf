// The four-lane Black-76 kernels: the templates of pricing/black76.hpp evaluated on
// pricing/simd.hpp's packs. Built with -mavx2 -mfma -ffp-contract=off (no fused
// multiply-adds of our own, so the arithmetic between calls rounds as the scalar
// formula's does); reached only through kernels/simd_pricing.cpp's check of the CPU.
#include <cstring>

#include "kernels/simd_pricing.hpp"
#include "pricing/simd.hpp"

namespace vaultrisk::detail {

namespace {

using simd::d4;
using simd::m4;

// A run's last partial pack: the valid lanes copied, the rest a harmless value
// (each lane is computed on its own, so padding never changes a valid lane).
struct Tail {
  double x[4];
  Tail(const double* p, std::int64_t n, double pad) {
    for (std::int64_t k = 0; k < 4; ++k) x[k] = k < n ? p[k] : pad;
  }
  operator d4() const { return d4::load(x); }  // NOLINT
};

m4 call_mask(const std::uint8_t* c, std::int64_t n) {
  double lanes[4];
  for (std::int64_t k = 0; k < 4; ++k) lanes[k] = k < n && c[k] != 0 ? 1.0 : 0.0;
  return d4::load(lanes) > 0.5;
}

}  // namespace

void erfc_lanes_avx2(const double* x, double* out, std::int64_t n) {
  std::int64_t j = 0;
  for (; j + 4 <= n; j += 4) erfc(d4::load(x + j)).store(out + j);
  if (j < n) {
    double r[4];
    erfc(d4(Tail(x + j, n - j, 0.0))).store(r);
    std::memcpy(out + j, r, static_cast<std::size_t>(n - j) * sizeof(double));
  }
}

void black_formula_lanes_avx2(bool call, double strike, const double* forward, const double* std_dev, double discount,
                              double minus, double* out, std::int64_t n) {
  std::int64_t j = 0;
  for (; j + 4 <= n; j += 4)
    (black_formula_of(call, strike, d4::load(forward + j), d4::load(std_dev + j), discount) - minus).store(out + j);
  if (j < n) {
    double r[4];
    (black_formula_of(call, strike, d4(Tail(forward + j, n - j, strike)), d4(Tail(std_dev + j, n - j, 1.0)), discount) -
     minus)
        .store(r);
    std::memcpy(out + j, r, static_cast<std::size_t>(n - j) * sizeof(double));
  }
}

void black76_lanes_avx2(const std::uint8_t* call, const double* spot, const double* strike, const double* t,
                        const double* rate, const double* vol, OptionValue* out, std::int64_t n) {
  for (std::int64_t j = 0; j < n; j += 4) {
    const std::int64_t k = n - j < 4 ? n - j : 4;
    const OptionValues<d4> o =
        black76_of(call_mask(call + j, k), d4(Tail(spot + j, k, 1.0)), d4(Tail(strike + j, k, 1.0)),
                   d4(Tail(t + j, k, 1.0)), d4(Tail(rate + j, k, 0.0)), d4(Tail(vol + j, k, 1.0)));
    double v[6][4];
    o.price.store(v[0]), o.delta.store(v[1]), o.gamma.store(v[2]);
    o.vega.store(v[3]), o.theta.store(v[4]), o.rho.store(v[5]);
    for (std::int64_t l = 0; l < k; ++l) out[j + l] = OptionValue{v[0][l], v[1][l], v[2][l], v[3][l], v[4][l], v[5][l]};
  }
}

}  // namespace vaultrisk::detail
