// Sequential reference revaluation, deliberately independent of the engine's layout.
#include "kernels/reference.hpp"

#include <cmath>
#include <map>

#include "core/error.hpp"
#include "kernels/functors.hpp"
#include "pricing/black76.hpp"
#include "pricing/svi.hpp"
#include "pricing/vol_shock.hpp"

namespace vaultrisk::reference {

namespace {

const ExpirySlice* find_slice(const UnderlyingMarket& m, double expiry) {
  for (const auto& s : m.expiries)
    if (s.expiry == expiry) return &s;
  return nullptr;
}

// Value of one unit of instrument i (options; perps handled per position).
struct Pricer {
  const Book& book;
  const Market& market;

  const UnderlyingMarket& um(std::size_t i) const {
    return market.underlyings.at(book.underlyings[book.underlying[i]]);
  }
  double vol(std::size_t i) const {
    const UnderlyingMarket& m = um(i);
    const double t = (book.expiry[i] - m.time) / kSecondsPerYear;
    if (!(t > 0.0)) return 0.0;
    const ExpirySlice* s = find_slice(m, book.expiry[i]);
    if (!s) throw input_error("reference: no slice for " + book.instrument_id[i]);
    const double f = m.spot * std::exp(m.rate * t);
    const double v = svi_vol(s->svi, book.strike[i], f, t);
    if (std::isnan(v)) throw input_error("reference: w <= 0 for " + book.instrument_id[i]);
    return v;
  }
  // Option value under spot multiplier s and vol mode (SPEC §4 "shocked value").
  double shocked(std::size_t i, double s, VolMode mode, const UnderlyingMethodology& meth) const {
    const UnderlyingMarket& m = um(i);
    const bool call = book.is_call[i] != 0;
    const double tte = book.expiry[i] - m.time;
    const double t = tte / kSecondsPerYear;
    if (!(t > 0.0)) return intrinsic(call, m.spot * s, book.strike[i]);
    const double sigma = vol(i);
    const VolShock shock = vol_shock(meth.vol_shock, tte);
    const double sv = shocked_vol(mode, sigma, shock, meth.vol_shock.up_floor);
    const double f = m.spot * std::exp(m.rate * t);
    return black_formula(call, book.strike[i], f * s, sv * std::sqrt(t), std::exp(-m.rate * t));
  }
};

}  // namespace

Result revalue(const Book& book, const Market& market, const Methodology& methodology) {
  for (const auto& name : book.underlyings)
    if (!market.underlyings.count(name)) throw input_error("reference: missing underlying " + name);
  Pricer pr{book, market};
  Result r;
  const std::size_t n_inst = book.instrument_count();
  auto& it = r.instruments;
  for (auto* v : {&it.price, &it.vol, &it.delta, &it.gamma, &it.vega, &it.theta, &it.rho})
    v->assign(n_inst, 0.0);
  for (std::size_t i = 0; i < n_inst; ++i) {
    const UnderlyingMarket& m = pr.um(i);
    if (book.kind[i] == InstrumentKind::perp) {
      it.price[i] = m.spot;
      it.delta[i] = 1.0;
      continue;
    }
    const double sigma = pr.vol(i);
    const OptionValue o = black76(book.is_call[i] != 0, m.spot, book.strike[i],
                                  (book.expiry[i] - m.time) / kSecondsPerYear, m.rate, sigma);
    it.price[i] = o.price;
    it.vol[i] = sigma;
    it.delta[i] = o.delta;
    it.gamma[i] = o.gamma;
    it.vega[i] = o.vega;
    it.theta[i] = o.theta;
    it.rho[i] = o.rho;
  }

  // Group positions per account per underlying name (std::map orders by name).
  std::vector<std::map<std::int32_t, std::vector<std::size_t>>> groups(book.account_count());
  for (std::size_t p = 0; p < book.position_count(); ++p)
    groups[book.pos_account[p]][book.underlying[book.pos_instrument[p]]].push_back(p);

  auto& ac = r.accounts;
  for (std::size_t a = 0; a < book.account_count(); ++a) {
    double equity = book.cash[a], mm = 0.0, im = 0.0;
    for (const auto& [u, positions] : groups[a]) {
      const std::string& name = book.underlyings[u];
      const UnderlyingMarket& m = market.underlyings.at(name);
      const UnderlyingMethodology& meth = methodology.for_underlying(name);
      const double S = m.spot;
      double mtm = 0, d = 0, g = 0, ve = 0, th = 0, rh = 0, perp = 0, shrt = 0, gross = 0;
      for (std::size_t p : positions) {
        const std::size_t i = book.pos_instrument[p];
        const double q = book.pos_quantity[p];
        if (book.kind[i] == InstrumentKind::perp) {
          mtm += q * (S - book.pos_entry[p]);
          d += q;
          perp += std::fabs(q);
        } else {
          mtm += q * it.price[i];
          d += q * it.delta[i];
          g += q * it.gamma[i];
          ve += q * it.vega[i];
          th += q * it.theta[i];
          rh += q * it.rho[i];
          shrt += std::max(0.0, -q);
          gross += std::fabs(q);
        }
      }
      gross += perp;
      std::vector<double> pnl;
      double scan = 0.0, worst_pnl = 0.0;
      int worst = -1;
      for (std::size_t j = 0; j < meth.scenarios.size(); ++j) {
        const Scenario& sc = meth.scenarios[j];
        double mtm_j = 0.0;
        for (std::size_t p : positions) {
          const std::size_t i = book.pos_instrument[p];
          const double q = book.pos_quantity[p];
          mtm_j += book.kind[i] == InstrumentKind::perp ? q * (S * sc.spot - book.pos_entry[p])
                                                        : q * pr.shocked(i, sc.spot, sc.vol, meth);
        }
        pnl.push_back((mtm_j - mtm) * sc.damp);
        scan = std::min(scan, pnl.back());
        if (detail::worst_improves(pnl.back(), worst_pnl)) {
          worst_pnl = pnl.back();
          worst = static_cast<int>(j);
        }
      }
      const double mm_cont = meth.mm_perp * perp * S + meth.mm_short * shrt * S;
      const double im_cont = mm_cont + meth.im_perp * perp * S + meth.im_short * shrt * S +
                             (m.confidence < meth.low_confidence ? (1 - m.confidence) * gross * S : 0.0);
      const double mm_u = -meth.mm_scan * scan + mm_cont, im_u = -meth.im_scan * scan + im_cont;
      auto& b = r.blocks;
      b.account.push_back(static_cast<std::int32_t>(a));
      b.underlying.push_back(u);
      b.mtm.push_back(mtm);
      b.delta.push_back(d);
      b.gamma.push_back(g);
      b.vega.push_back(ve);
      b.theta.push_back(th);
      b.rho.push_back(rh);
      b.scan.push_back(scan);
      b.worst.push_back(worst);
      b.mm.push_back(mm_u);
      b.im.push_back(im_u);
      r.block_pnl.push_back(std::move(pnl));
      equity += mtm;
      mm += mm_u;
      im += im_u;
    }
    ac.equity.push_back(equity);
    ac.mm.push_back(mm);
    ac.im.push_back(im);
    ac.mm_surplus.push_back(equity - mm);
    ac.im_surplus.push_back(equity - im);
    ac.status.push_back(static_cast<std::uint8_t>(classify_account(equity, mm, im)));
  }
  return r;
}

}  // namespace vaultrisk::reference
