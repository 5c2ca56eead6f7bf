// Pricing against QuantLib, finite differences, parity and closed forms.
#include <gtest/gtest.h>
#include <ql/quantlib.hpp>

#include <quadmath.h>

#include <cmath>
#include <limits>
#include <iostream>
#include <random>
#include <vector>

#include "kernels/simd_pricing.hpp"
#include "pricing/black76.hpp"
#include "pricing/svi.hpp"
#include "pricing/vol_shock.hpp"

namespace ql = QuantLib;
using namespace vaultrisk;

namespace {

// QuantLib's AnalyticEuropeanEngine with q = 0, flat continuous rate and vol,
// Actual/365F, maturity a whole number of days (QuantLib dates are daily).
OptionValue quantlib_value(bool call, double spot, double strike, int days, double rate, double vol) {
  const ql::Date today(1, ql::January, 2026);
  ql::Settings::instance().evaluationDate() = today;
  const ql::DayCounter dc = ql::Actual365Fixed();
  auto s = ql::ext::make_shared<ql::SimpleQuote>(spot);
  ql::Handle<ql::YieldTermStructure> r(ql::ext::make_shared<ql::FlatForward>(today, rate, dc));
  ql::Handle<ql::YieldTermStructure> q(ql::ext::make_shared<ql::FlatForward>(today, 0.0, dc));
  ql::Handle<ql::BlackVolTermStructure> v(
      ql::ext::make_shared<ql::BlackConstantVol>(today, ql::NullCalendar(), vol, dc));
  auto process = ql::ext::make_shared<ql::BlackScholesMertonProcess>(ql::Handle<ql::Quote>(s), q, r, v);
  ql::EuropeanOption opt(
      ql::ext::make_shared<ql::PlainVanillaPayoff>(call ? ql::Option::Call : ql::Option::Put, strike),
      ql::ext::make_shared<ql::EuropeanExercise>(today + days));
  opt.setPricingEngine(ql::ext::make_shared<ql::AnalyticEuropeanEngine>(process));
  return OptionValue{opt.NPV(), opt.delta(), opt.gamma(), opt.vega(), opt.theta(), opt.rho()};
}

// Within 1e-12 of the reference, or within 64 ulps of the quantity's natural
// scale: QuantLib's normal CDF is 0.5 (1 + erf(x)), accurate only in absolute
// terms in the tails, so far out-of-the-money values carry ~1e-16 * scale of
// absolute noise there (it even returns small negative prices).
constexpr double kUlpFloor = 64 * std::numeric_limits<double>::epsilon();
void expect_close(double ours, double ref, double scale, const char* what, int row) {
  EXPECT_LE(std::fabs(ours - ref), 1e-12 * std::fabs(ref) + kUlpFloor * scale)
      << what << " row " << row << ": ours " << ours << " reference " << ref;
}

// Black-76 in quad precision: an exact-to-double oracle for the tails.
double quad_black(bool call, double strike, double forward, double std_dev, double discount) {
  const __float128 f = forward, k = strike, sd = std_dev, d = discount;
  const __float128 d1 = logq(f / k) / sd + sd / 2, d2 = d1 - sd;
  const __float128 r2 = sqrtq(2);
  auto n = [&](__float128 x) { return erfcq(-x / r2) / 2; };
  const __float128 v = call ? f * n(d1) - k * n(d2) : k * n(-d2) - f * n(-d1);
  return static_cast<double>(d * v);
}

}  // namespace

TEST(Pricing, MatchesQuantLibAnalyticEuropeanEngineOnRandomGrid) {
  std::mt19937_64 rng(20261123);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  int compared = 0;
  for (int row = 0; row < 2000; ++row) {
    const bool call = row % 2 == 0;
    const double spot = std::exp(std::log(0.1) + u(rng) * std::log(1e6));  // 0.1 .. 1e5
    const double moneyness = std::exp(-1.2 + 2.4 * u(rng));                 // K/S in 0.3 .. 3.3
    const double strike = spot * moneyness;
    const int days = 1 + static_cast<int>(u(rng) * 1500);
    const double rate = -0.02 + 0.12 * u(rng);
    const double vol = 0.05 + 1.95 * u(rng);
    const double t = year_fraction(days * 86400.0, 0.0);
    const OptionValue ours = black76(call, spot, strike, t, rate, vol);
    const OptionValue ref = quantlib_value(call, spot, strike, days, rate, vol);
    const double disc = std::exp(-rate * t), fwd = spot * std::exp(rate * t);
    const double scale = disc * (fwd + strike);
    expect_close(ours.price, ref.price, scale, "price", row);
    expect_close(ours.delta, ref.delta, 1.0, "delta", row);
    expect_close(ours.gamma, ref.gamma, 1.0 / spot, "gamma", row);
    expect_close(ours.vega, ref.vega, spot * std::sqrt(t), "vega", row);
    expect_close(ours.theta, ref.theta, scale * (1 + std::fabs(rate)) + spot * vol / std::sqrt(t), "theta", row);
    expect_close(ours.rho, ref.rho, strike * t * disc, "rho", row);
    ++compared;
  }
  EXPECT_EQ(compared, 2000);
}

TEST(Pricing, MatchesQuantLibBlackFormulaAtFractionalMaturities) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int row = 0; row < 5000; ++row) {
    const bool call = row % 2 == 1;
    const double forward = 10.0 + 1e5 * u(rng);
    const double strike = forward * std::exp(-1.0 + 2.0 * u(rng));
    const double std_dev = 0.01 + 1.5 * u(rng);
    const double discount = std::exp(-0.1 * u(rng));
    const double ours = black_formula(call, strike, forward, std_dev, discount);
    const double ref = ql::blackFormula(call ? ql::Option::Call : ql::Option::Put, strike, forward, std_dev, discount);
    expect_close(ours, ref, discount * (forward + strike), "blackFormula", row);
  }
}

TEST(Pricing, MatchesAQuadPrecisionReferenceToOnePartInATrillion) {
  // Where QuantLib's tails are imprecise, a __float128 evaluation of the same
  // formula decides. Everywhere: within ulps of the notional. Where the price
  // matters: within 1e-12 relative.
  std::mt19937_64 rng(99);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  int relative_checks = 0;
  for (int row = 0; row < 20000; ++row) {
    const bool call = row % 2 == 0;
    const double forward = std::exp(-3 + 15 * u(rng));
    const double strike = forward * std::exp(-2.5 + 5 * u(rng));
    const double std_dev = 0.005 + 2.0 * u(rng);
    const double discount = std::exp(-0.1 * u(rng));
    const double ours = black_formula(call, strike, forward, std_dev, discount);
    const double exact = quad_black(call, strike, forward, std_dev, discount);
    const double d1 = std::log(forward / strike) / std_dev + 0.5 * std_dev, d2 = d1 - std_dev;
    const double terms = call ? forward * 0.5 * std::erfc(-d1 / std::sqrt(2.0)) + strike * 0.5 * std::erfc(-d2 / std::sqrt(2.0))
                              : strike * 0.5 * std::erfc(d2 / std::sqrt(2.0)) + forward * 0.5 * std::erfc(d1 / std::sqrt(2.0));
    ASSERT_LE(std::fabs(ours - exact), 1e-12 * std::fabs(exact) + kUlpFloor * discount * (forward + strike))
        << "row " << row << " ours " << ours << " exact " << exact;
    // Relative exactness where the price matters: not cancelled (>= 1e-3 of its
    // terms, so at most ~3 digits lost) and not negligible against the notional
    // (deep-tail prices are ill-conditioned in the rounded F/K itself).
    if (exact > 1e-3 * discount * terms && exact > 1e-10 * discount * (forward + strike)) {
      ++relative_checks;
      ASSERT_LE(std::fabs(ours - exact), 1e-12 * exact) << "row " << row;
    }
  }
  EXPECT_GT(relative_checks, 15000);
}

TEST(Pricing, GreeksMatchCentralFiniteDifferences) {
  const struct { bool call; double s, k, t, r, v; } cases[] = {
      {true, 100, 100, 0.5, 0.03, 0.2},  {false, 100, 120, 1.0, 0.05, 0.35}, {true, 97000, 80000, 0.1, 0.0, 0.6},
      {false, 2.3, 2.0, 2.0, 0.01, 0.9}, {true, 3400, 5000, 0.02, 0.04, 1.2}, {false, 50, 40, 3.0, -0.01, 0.15}};
  for (const auto& c : cases) {
    const OptionValue o = black76(c.call, c.s, c.k, c.t, c.r, c.v);
    auto px = [&](double s, double t, double r, double v) { return black76(c.call, s, c.k, t, r, v).price; };
    const double hs = c.s * 1e-4, ht = 1e-6, hr = 1e-6, hv = 1e-6;
    const double delta = (px(c.s + hs, c.t, c.r, c.v) - px(c.s - hs, c.t, c.r, c.v)) / (2 * hs);
    const double gamma = (px(c.s + hs, c.t, c.r, c.v) - 2 * o.price + px(c.s - hs, c.t, c.r, c.v)) / (hs * hs);
    const double vega = (px(c.s, c.t, c.r, c.v + hv) - px(c.s, c.t, c.r, c.v - hv)) / (2 * hv);
    // theta = dV/dt with calendar time passing: time to expiry shrinks.
    const double theta = -(px(c.s, c.t + ht, c.r, c.v) - px(c.s, c.t - ht, c.r, c.v)) / (2 * ht);
    const double rho = (px(c.s, c.t, c.r + hr, c.v) - px(c.s, c.t, c.r - hr, c.v)) / (2 * hr);
    const double scale = c.s * 1e-7;
    EXPECT_NEAR(o.delta, delta, 1e-6) << c.s << "/" << c.k;
    EXPECT_NEAR(o.gamma, gamma, std::max(1e-4 * std::fabs(o.gamma), 1e-9)) << c.s << "/" << c.k;
    EXPECT_NEAR(o.vega, vega, std::max(1e-6 * std::fabs(o.vega), scale));
    EXPECT_NEAR(o.theta, theta, std::max(1e-6 * std::fabs(o.theta), scale));
    EXPECT_NEAR(o.rho, rho, std::max(1e-6 * std::fabs(o.rho), scale));
  }
}

TEST(Pricing, PutCallParityHoldsOnTheForward) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int row = 0; row < 1000; ++row) {
    const double s = 1 + 1e4 * u(rng), k = s * (0.5 + u(rng)), t = 0.01 + 3 * u(rng), r = 0.1 * u(rng) - 0.02;
    const double v = 0.05 + u(rng);
    const OptionValue c = black76(true, s, k, t, r, v), p = black76(false, s, k, t, r, v);
    // C - P = S - K e^{-rT}; delta_C - delta_P = 1; gamma and vega equal.
    EXPECT_NEAR(c.price - p.price, s - k * std::exp(-r * t), 1e-11 * s);
    EXPECT_NEAR(c.delta - p.delta, 1.0, 1e-14);
    EXPECT_NEAR(c.gamma, p.gamma, 1e-15 * std::max(1.0, c.gamma));
    EXPECT_NEAR(c.vega, p.vega, 1e-12 * std::max(1.0, c.vega));
  }
}

TEST(Pricing, ExpiredOptionIsIntrinsicAtSpotWithZeroGreeks) {
  for (double t : {0.0, -0.5}) {
    const OptionValue c = black76(true, 110, 100, t, 0.05, 0.3);
    const OptionValue p = black76(false, 110, 100, t, 0.05, 0.3);
    EXPECT_EQ(c.price, 10.0);  // undiscounted, at spot
    EXPECT_EQ(p.price, 0.0);
    EXPECT_EQ(black76(false, 90, 100, t, 0.05, 0.3).price, 10.0);
    for (const OptionValue& o : {c, p}) {
      EXPECT_EQ(o.delta, 0.0);
      EXPECT_EQ(o.gamma, 0.0);
      EXPECT_EQ(o.vega, 0.0);
      EXPECT_EQ(o.theta, 0.0);
      EXPECT_EQ(o.rho, 0.0);
    }
  }
}

TEST(Pricing, ZeroVolIsDiscountedForwardIntrinsicWithItsLimitGreeks) {
  const double s = 100, k = 95, t = 0.5, r = 0.04;
  const double d = std::exp(-r * t), f = s * std::exp(r * t);
  for (double vol : {0.0, 1e-14}) {  // sigma = 0, and sigma sqrt(T) below 1e-12
    const OptionValue c = black76(true, s, k, t, r, vol);
    EXPECT_DOUBLE_EQ(c.price, d * (f - k));
    EXPECT_EQ(c.delta, 1.0);
    EXPECT_EQ(c.gamma, 0.0);
    EXPECT_EQ(c.vega, 0.0);
    EXPECT_DOUBLE_EQ(c.theta, -r * k * d);
    EXPECT_DOUBLE_EQ(c.rho, t * k * d);
    const OptionValue p = black76(false, s, k, t, r, vol);  // OTM put: worthless, flat
    EXPECT_EQ(p.price, 0.0);
    EXPECT_EQ(p.delta, 0.0);
    const OptionValue p2 = black76(false, s, 120, t, r, vol);
    EXPECT_DOUBLE_EQ(p2.price, d * (120 - f));
    EXPECT_EQ(p2.delta, -1.0);
    EXPECT_DOUBLE_EQ(p2.theta, r * 120 * d);
    EXPECT_DOUBLE_EQ(p2.rho, -t * 120 * d);
  }
  // The limit is continuous: a tiny but usable vol prices the same to rounding.
  EXPECT_NEAR(black76(true, s, k, t, r, 1e-9).price, d * (f - k), 1e-9);
}

TEST(Pricing, ExtremesNeverProduceNaNOrInf) {
  const double spots[] = {1e-8, 1e-3, 1, 1e5, 1e12};
  const double strikes[] = {1e-8, 1e-3, 1, 1e5, 1e12};
  const double ts[] = {1e-12, 1.0 / 31536000, 1e-3, 1, 50};
  const double vols[] = {0, 1e-14, 1e-6, 0.5, 5, 50};
  for (double s : spots)
    for (double k : strikes)
      for (double t : ts)
        for (double v : vols)
          for (bool call : {true, false}) {
            const OptionValue o = black76(call, s, k, t, 0.05, v);
            for (double x : {o.price, o.delta, o.gamma, o.vega, o.theta, o.rho})
              ASSERT_TRUE(std::isfinite(x)) << s << " " << k << " " << t << " " << v << " " << call;
            EXPECT_GE(o.price, 0.0);
            // No-arbitrage bounds: a call is worth at most the spot, a put at most K e^{-rT}.
            if (call) EXPECT_LE(o.price, s * (1 + 1e-12));
            else EXPECT_LE(o.price, k * std::exp(-0.05 * t) * (1 + 1e-12));
          }
}

TEST(Pricing, DeepInAndOutOfTheMoneyHaveTheRightLimits) {
  const OptionValue deep_itm_call = black76(true, 1000, 1, 1, 0.0, 0.5);
  EXPECT_NEAR(deep_itm_call.price, 999, 1e-9);
  EXPECT_NEAR(deep_itm_call.delta, 1.0, 1e-15);
  const OptionValue deep_otm_call = black76(true, 1, 1000, 1, 0.0, 0.5);
  EXPECT_GE(deep_otm_call.price, 0.0);
  EXPECT_LT(deep_otm_call.price, 1e-30);
  // Far-tail accuracy: N(-d2) for the OTM put through erfc keeps full relative precision.
  const OptionValue otm_put = black76(false, 100, 50, 0.25, 0.0, 0.2);
  const double sd = 0.2 * 0.5, d1 = std::log(2.0) / sd + 0.5 * sd, d2 = d1 - sd;
  const double exact = 50 * 0.5 * std::erfc(d2 / std::sqrt(2.0)) - 100 * 0.5 * std::erfc(d1 / std::sqrt(2.0));
  EXPECT_NEAR(otm_put.price, exact, 1e-12 * exact);
}

// The four-lane path (kernels/simd_pricing.hpp: SLEEF's exp and log, our erfc) where
// this CPU has AVX2 and FMA; elsewhere these tests run the libm path they fall back to.
namespace {
double ulp_of(double x) {
  const double a = std::fabs(x);
  return std::nextafter(a, std::numeric_limits<double>::infinity()) - a;
}
}  // namespace

TEST(PricingLanes, ErfcIsWithinFourUlpOfQuadPrecision) {
  std::vector<double> x;
  for (int i = -2800000; i <= 2800000; i += 7) x.push_back(i * 1e-5);  // every interval, at odd points
  for (int k = -60; k <= 60; ++k) {  // the interval edges k/2 and their neighbours
    const double e = k * 0.5;
    x.insert(x.end(), {e, std::nextafter(e, -1e9), std::nextafter(e, 1e9)});
  }
  x.insert(x.end(), {0.0, -0.0, 1e-300, -1e-300, 26.5, 27.2, 27.9, 28.0, 40.0, -40.0, 1e300, -1e300,
                     std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()});
  std::vector<double> got(x.size());
  detail::erfc_lanes(x.data(), got.data(), static_cast<std::int64_t>(x.size()));
  double worst = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double exact = static_cast<double>(erfcq(static_cast<__float128>(x[i])));
    if (exact < std::numeric_limits<double>::min()) {  // subnormal or zero: absolute
      ASSERT_LE(std::fabs(got[i] - exact), 1e-300) << "x " << x[i];
      continue;
    }
    const double ulps = std::fabs(got[i] - exact) / ulp_of(exact);
    worst = std::max(worst, ulps);
    ASSERT_LE(ulps, 4.0) << "x " << x[i] << " got " << got[i] << " exact " << exact;
  }
  double nan = std::numeric_limits<double>::quiet_NaN(), out = 0;
  detail::erfc_lanes(&nan, &out, 1);
  EXPECT_TRUE(std::isnan(out));
  std::cout << detail::pricing_path() << ": largest error " << worst << " ulp over " << x.size() << " points\n";
}

TEST(PricingLanes, Black76MatchesQuantLibOnTheRandomGridFourOptionsAtATime) {
  std::mt19937_64 rng(20261123);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  constexpr int kRows = 2000;
  std::vector<std::uint8_t> call(kRows);
  std::vector<double> spot(kRows), strike(kRows), t(kRows), rate(kRows), vol(kRows);
  std::vector<int> days(kRows);
  for (int row = 0; row < kRows; ++row) {  // the same draws as the one-lane test above
    call[row] = row % 2 == 0;
    spot[row] = std::exp(std::log(0.1) + u(rng) * std::log(1e6));
    strike[row] = spot[row] * std::exp(-1.2 + 2.4 * u(rng));
    days[row] = 1 + static_cast<int>(u(rng) * 1500);
    rate[row] = -0.02 + 0.12 * u(rng);
    vol[row] = 0.05 + 1.95 * u(rng);
    t[row] = year_fraction(days[row] * 86400.0, 0.0);
  }
  std::vector<OptionValue> ours(kRows);
  detail::black76_lanes(call.data(), spot.data(), strike.data(), t.data(), rate.data(), vol.data(), ours.data(), kRows);
  for (int row = 0; row < kRows; ++row) {
    const OptionValue ref = quantlib_value(call[row] != 0, spot[row], strike[row], days[row], rate[row], vol[row]);
    const double disc = std::exp(-rate[row] * t[row]), fwd = spot[row] * std::exp(rate[row] * t[row]);
    const double scale = disc * (fwd + strike[row]);
    const OptionValue& o = ours[row];
    expect_close(o.price, ref.price, scale, "price", row);
    expect_close(o.delta, ref.delta, 1.0, "delta", row);
    expect_close(o.gamma, ref.gamma, 1.0 / spot[row], "gamma", row);
    expect_close(o.vega, ref.vega, spot[row] * std::sqrt(t[row]), "vega", row);
    expect_close(o.theta, ref.theta, scale * (1 + std::fabs(rate[row])) + spot[row] * vol[row] / std::sqrt(t[row]),
                 "theta", row);
    expect_close(o.rho, ref.rho, strike[row] * t[row] * disc, "rho", row);
  }
}

TEST(PricingLanes, BlackFormulaMatchesQuadPrecisionOneOptionUnderManyScenarios) {
  // As the engine and stress call it: one option (call, strike, discount), a run of
  // forwards and standard deviations. Every value within 1e-12 of quad precision
  // or ulps of the notional, as the one-lane test asks.
  std::mt19937_64 rng(99);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  int relative_checks = 0;
  for (int option = 0; option < 400; ++option) {
    const bool call = option % 2 == 0;
    const double forward0 = std::exp(-3 + 15 * u(rng));
    const double strike = forward0 * std::exp(-2.5 + 5 * u(rng));
    const double discount = std::exp(-0.1 * u(rng));
    constexpr int kRun = 53;  // not a multiple of four: the last pack is padded
    double forward[kRun], std_dev[kRun], got[kRun];
    for (int j = 0; j < kRun; ++j) {
      forward[j] = forward0 * std::exp(-0.5 + u(rng));
      std_dev[j] = j % 17 == 3 ? 1e-14 : 0.005 + 2.0 * u(rng);  // some lanes at the deterministic limit
    }
    detail::black_formula_lanes(call, strike, forward, std_dev, discount, 0.0, got, kRun);
    for (int j = 0; j < kRun; ++j) {
      const double exact = std_dev[j] < kMinStdDev ? black_formula(call, strike, forward[j], std_dev[j], discount)
                                                   : quad_black(call, strike, forward[j], std_dev[j], discount);
      const double notional = discount * (forward[j] + strike);
      ASSERT_LE(std::fabs(got[j] - exact), 1e-12 * std::fabs(exact) + kUlpFloor * notional)
          << "option " << option << " lane " << j << " got " << got[j] << " exact " << exact;
      if (exact > 1e-6 * notional) {
        ++relative_checks;
        ASSERT_LE(std::fabs(got[j] - exact), 1e-12 * exact) << "option " << option << " lane " << j;
      }
    }
  }
  EXPECT_GT(relative_checks, 5000);
}

TEST(PricingLanes, LimitsMixedAcrossLanesAgreeWithTheOneLaneFormula) {
  // Expired, zero-vol and ordinary options side by side in one pack: each lane gets
  // its own case's values, as black76 gives them one at a time.
  std::vector<std::uint8_t> call;
  std::vector<double> spot, strike, t, rate, vol;
  for (double s : {1e-8, 1.0, 1e5, 1e12})
    for (double k : {1e-3, 1.0, 1e5})
      for (double tt : {-0.5, 0.0, 1e-12, 1e-3, 1.0, 50.0})
        for (double v : {0.0, 1e-14, 1e-6, 0.5, 50.0})
          for (bool c : {true, false}) {
            call.push_back(c), spot.push_back(s), strike.push_back(k), t.push_back(tt), rate.push_back(0.05);
            vol.push_back(v);
          }
  const auto n = static_cast<std::int64_t>(call.size());
  std::vector<OptionValue> got(call.size());
  detail::black76_lanes(call.data(), spot.data(), strike.data(), t.data(), rate.data(), vol.data(), got.data(), n);
  for (std::int64_t i = 0; i < n; ++i) {
    const OptionValue want = black76(call[i] != 0, spot[i], strike[i], t[i], rate[i], vol[i]);
    const double g[] = {got[i].price, got[i].delta, got[i].gamma, got[i].vega, got[i].theta, got[i].rho};
    const double w[] = {want.price, want.delta, want.gamma, want.vega, want.theta, want.rho};
    for (int k = 0; k < 6; ++k) {
      ASSERT_TRUE(std::isfinite(g[k])) << "row " << i << " value " << k;
      // Cancelled values (near the money at a tiny vol) carry ulps of the notional.
      const double notional = (1 + spot[i] + strike[i]) * (1 + std::fabs(t[i]) + vol[i] / std::sqrt(std::max(t[i], 1e-12)));
      ASSERT_LE(std::fabs(g[k] - w[k]), 1e-12 * std::fabs(w[k]) + kUlpFloor * notional)
          << "row " << i << " value " << k << " lanes " << g[k] << " one lane " << w[k];
      if (w[k] == 0.0) {  // the limits' exact zeros
        ASSERT_EQ(g[k], 0.0) << "row " << i << " value " << k;
      }
    }
  }
}

TEST(Svi, TotalVarianceAndVolMatchTheClosedForm) {
  const SviParams p{0.02, 0.1, -0.3, 0.05, 0.2};
  const double f = 100, t = 0.25;
  for (double k : {50.0, 90.0, 100.0, 110.0, 200.0}) {
    const double x = std::log(k / f) - 0.05;
    const double w = 0.02 + 0.1 * (-0.3 * x + std::sqrt(x * x + 0.04));
    EXPECT_DOUBLE_EQ(svi_total_variance(p, std::log(k / f)), w);
    EXPECT_DOUBLE_EQ(svi_vol(p, k, f, t), std::sqrt(w / t));
  }
  // w <= 0 is unusable: NaN, which callers report as an input error.
  EXPECT_TRUE(std::isnan(svi_vol(SviParams{-0.1, 0.01, 0, 0, 0.1}, 100, 100, 1)));
  EXPECT_TRUE(std::isnan(svi_vol(SviParams{0.0, 0.0, 0, 0, 0.1}, 100, 100, 1)));
}

TEST(VolShock, FollowsThePmrmFormula) {
  const VolShockParams p{2592000, 86400, 0.3, 0.13, 0.5, 0.3, 0.4};
  // 30 days exactly: m = 1 (short exponent), up = 1.5, down = 0.7.
  VolShock s = vol_shock(p, 2592000);
  EXPECT_DOUBLE_EQ(s.up, 1.5);
  EXPECT_DOUBLE_EQ(s.down, 0.7);
  // One hour: floored at one day, m = 30^0.3.
  s = vol_shock(p, 3600);
  EXPECT_DOUBLE_EQ(s.up, 1 + 0.5 * std::pow(30.0, 0.3));
  EXPECT_DOUBLE_EQ(s.down, std::max(0.0, 1 - 0.3 * std::pow(30.0, 0.3)));
  // One year: long exponent.
  s = vol_shock(p, 31536000);
  const double m = std::pow(2592000.0 / 31536000.0, 0.13);
  EXPECT_DOUBLE_EQ(s.up, 1 + 0.5 * m);
  EXPECT_DOUBLE_EQ(s.down, 1 - 0.3 * m);
  // Shocked vols: up is floored at 0.4, down can reach zero but never below.
  EXPECT_DOUBLE_EQ(shocked_vol(VolMode::up, 0.1, VolShock{1.5, 0.7}, 0.4), 0.4);
  EXPECT_DOUBLE_EQ(shocked_vol(VolMode::up, 0.5, VolShock{1.5, 0.7}, 0.4), 0.75);
  EXPECT_DOUBLE_EQ(shocked_vol(VolMode::down, 0.5, VolShock{1.5, 0.7}, 0.4), 0.35);
  EXPECT_DOUBLE_EQ(shocked_vol(VolMode::none, 0.5, VolShock{1.5, 0.7}, 0.4), 0.5);
  const VolShockParams harsh{2592000, 86400, 0.3, 0.13, 0.5, 0.9, 0.4};
  EXPECT_EQ(vol_shock(harsh, 86400).down, 0.0);
}
