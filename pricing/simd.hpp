// Four doubles in an AVX2 register, with the lane operations of pricing/lanes.hpp,
// SLEEF's vector exp and log (1.0 ULP each) and a four-lane erfc of our own (below),
// so that the pricing templates run four scenarios or four options at a time. Host only; include it
// only from a translation unit built for AVX2 and FMA (kernels/simd_pricing.cpp),
// which is also where the choice of this path is made.
#pragma once

#if !defined(__AVX2__) || !defined(__FMA__)
#error "pricing/simd.hpp needs a translation unit built with -mavx2 -mfma"
#endif

#include <immintrin.h>
#include <sleef.h>

#include "pricing/erfcx_table.hpp"

namespace vaultrisk::simd {

struct d4 {
  __m256d v;
  d4() = default;
  explicit d4(__m256d x) : v(x) {}
  d4(double x) : v(_mm256_set1_pd(x)) {}  // NOLINT: a scalar broadcasts, as in the scalar formula
  static d4 load(const double* p) { return d4(_mm256_loadu_pd(p)); }
  void store(double* p) const { _mm256_storeu_pd(p, v); }
};
struct m4 {  // a lane mask: all ones or all zeros per lane
  __m256d m;
};

inline d4 operator+(d4 a, d4 b) { return d4(_mm256_add_pd(a.v, b.v)); }
inline d4 operator-(d4 a, d4 b) { return d4(_mm256_sub_pd(a.v, b.v)); }
inline d4 operator*(d4 a, d4 b) { return d4(_mm256_mul_pd(a.v, b.v)); }
inline d4 operator/(d4 a, d4 b) { return d4(_mm256_div_pd(a.v, b.v)); }
inline d4 operator+(double a, d4 b) { return d4(a) + b; }
inline d4 operator-(double a, d4 b) { return d4(a) - b; }
inline d4 operator*(double a, d4 b) { return d4(a) * b; }
inline d4 operator/(double a, d4 b) { return d4(a) / b; }
inline d4 operator+(d4 a, double b) { return a + d4(b); }
inline d4 operator-(d4 a, double b) { return a - d4(b); }
inline d4 operator*(d4 a, double b) { return a * d4(b); }
inline d4 operator/(d4 a, double b) { return a / d4(b); }
inline d4 operator-(d4 a) { return d4(_mm256_xor_pd(a.v, _mm256_set1_pd(-0.0))); }  // exact, as -x

// Ordered comparisons are false on NaN lanes, as the scalar ones are.
inline m4 operator>(d4 a, d4 b) { return m4{_mm256_cmp_pd(a.v, b.v, _CMP_GT_OQ)}; }
inline m4 operator>=(d4 a, d4 b) { return m4{_mm256_cmp_pd(a.v, b.v, _CMP_GE_OQ)}; }
inline m4 operator>(d4 a, double b) { return a > d4(b); }
inline m4 operator>=(d4 a, double b) { return a >= d4(b); }
inline m4 operator!(m4 a) { return m4{_mm256_xor_pd(a.m, _mm256_castsi256_pd(_mm256_set1_epi64x(-1)))}; }
inline m4 operator|(m4 a, m4 b) { return m4{_mm256_or_pd(a.m, b.m)}; }

inline d4 select(m4 c, d4 a, d4 b) { return d4(_mm256_blendv_pd(b.v, a.v, c.m)); }
inline d4 select(bool c, d4 a, d4 b) { return c ? a : b; }
inline bool all_of(m4 c) { return _mm256_movemask_pd(c.m) == 0xF; }

inline d4 exp(d4 x) { return d4(Sleef_expd4_u10avx2(x.v)); }
inline d4 log(d4 x) { return d4(Sleef_logd4_u10avx2(x.v)); }

// erfc(x) for four lanes. SLEEF's own erfc (Sleef_erfcd4_u15) measured no faster
// than glibc's scalar one on our machine (16 ns a value), so it is built here from
// erfcx(a) = exp(a²) erfc(a), a = |x|:
// - erfcx by its Taylor polynomial about the centre of a's interval of width 1/2
//   (pricing/erfcx_table.hpp: degree 18, truncation < 2e-18), evaluated by Horner
//   with fused multiply-adds, each lane's coefficients read as rows and transposed;
// - exp(−a²) without the rounding of a²: p = a·a and e = a·a − p exactly (an FMA),
//   then exp(−p)·(1 − e), with SLEEF's exp;
// - erfc(x) = 2 − erfc(a) for x < 0, which loses nothing (erfc(a) <= 1).
// |x| is clamped to 27.9, past which erfc is 0 in doubles; NaN stays NaN. The bound
// is checked against quad precision in tests/test_pricing.cpp (ErfcLanes).
inline d4 erfc(d4 x) {
  const __m256d sign_bit = _mm256_set1_pd(-0.0);
  const __m256d a = _mm256_min_pd(_mm256_andnot_pd(sign_bit, x.v), _mm256_set1_pd(27.9));  // NaN lanes: 27.9
  const __m128i k = _mm256_cvttpd_epi32(_mm256_mul_pd(a, _mm256_set1_pd(1.0 / kErfcxWidth)));
  alignas(16) int idx[4];
  _mm_store_si128(reinterpret_cast<__m128i*>(idx), k);
  const __m256d centre =
      _mm256_add_pd(_mm256_mul_pd(_mm256_cvtepi32_pd(k), _mm256_set1_pd(kErfcxWidth)), _mm256_set1_pd(kErfcxWidth / 2));
  const __m256d d = _mm256_sub_pd(a, centre);  // exact: both are multiples of a's ulp, |d| <= 1/4
  const double* r0 = kErfcxTaylor[idx[0]];
  const double* r1 = kErfcxTaylor[idx[1]];
  const double* r2 = kErfcxTaylor[idx[2]];
  const double* r3 = kErfcxTaylor[idx[3]];
  __m256d acc = _mm256_setzero_pd();
  for (int q = kErfcxTerms - 4; q >= 0; q -= 4) {  // four coefficients a step, highest first
    const __m256d x0 = _mm256_load_pd(r0 + q), x1 = _mm256_load_pd(r1 + q);
    const __m256d x2 = _mm256_load_pd(r2 + q), x3 = _mm256_load_pd(r3 + q);
    const __m256d lo01 = _mm256_unpacklo_pd(x0, x1), hi01 = _mm256_unpackhi_pd(x0, x1);
    const __m256d lo23 = _mm256_unpacklo_pd(x2, x3), hi23 = _mm256_unpackhi_pd(x2, x3);
    const __m256d c0 = _mm256_permute2f128_pd(lo01, lo23, 0x20), c1 = _mm256_permute2f128_pd(hi01, hi23, 0x20);
    const __m256d c2 = _mm256_permute2f128_pd(lo01, lo23, 0x31), c3 = _mm256_permute2f128_pd(hi01, hi23, 0x31);
    acc = _mm256_fmadd_pd(acc, d, c3);
    acc = _mm256_fmadd_pd(acc, d, c2);
    acc = _mm256_fmadd_pd(acc, d, c1);
    acc = _mm256_fmadd_pd(acc, d, c0);
  }
  const __m256d p = _mm256_mul_pd(a, a);
  const __m256d e = _mm256_fmsub_pd(a, a, p);
  const __m256d g = Sleef_expd4_u10avx2(_mm256_xor_pd(p, sign_bit));
  const __m256d upper = _mm256_mul_pd(acc, _mm256_fnmadd_pd(g, e, g));  // erfc(a)
  const __m256d negative = _mm256_cmp_pd(x.v, _mm256_setzero_pd(), _CMP_LT_OQ);
  const __m256d r = _mm256_blendv_pd(upper, _mm256_sub_pd(_mm256_set1_pd(2.0), upper), negative);
  return d4(_mm256_blendv_pd(r, x.v, _mm256_cmp_pd(x.v, x.v, _CMP_UNORD_Q)));
}
inline d4 sqrt(d4 x) { return d4(_mm256_sqrt_pd(x.v)); }  // correctly rounded, as std::sqrt

}  // namespace vaultrisk::simd
