// Engine benchmarks: pricing + Greeks (vs QuantLib, per core), scenario table,
// full and incremental revaluation of generated books.
#include <benchmark/benchmark.h>
#include <omp.h>
#include <ql/quantlib.hpp>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <random>

#include "io/book_csv.hpp"
#include "io/gen_book.hpp"
#include "io/market_json.hpp"
#include "kernels/engine.hpp"
#include "kernels/simd_pricing.hpp"
#include "pricing/black76.hpp"

using namespace vaultrisk;
namespace ql = QuantLib;

namespace {

struct OptionSet {
  std::vector<double> spot, strike, t, rate, vol;
  std::vector<std::uint8_t> call;
};

OptionSet random_options(std::size_t n) {
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> u(0, 1);
  OptionSet o;
  for (std::size_t i = 0; i < n; ++i) {
    o.spot.push_back(100);
    o.strike.push_back(60 + 80 * u(rng));
    o.t.push_back((1 + static_cast<int>(364 * u(rng))) / 365.0);
    o.rate.push_back(0.03);
    o.vol.push_back(0.2 + 0.6 * u(rng));
    o.call.push_back(i % 2);
  }
  return o;
}

// Price + five Greeks, one core: the per-core figure to set against QuantLib.
void BM_Pricing_PriceGreeks_1core(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const OptionSet o = random_options(n);
  std::vector<OptionValue> out(n);
  for (auto _ : state) {
    for (std::size_t i = 0; i < n; ++i) out[i] = black76(o.call[i], o.spot[i], o.strike[i], o.t[i], o.rate[i], o.vol[i]);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}
BENCHMARK(BM_Pricing_PriceGreeks_1core)->Arg(100000);

// The same options through the CPU engine's pricing path: four at a time with SLEEF
// and AVX2 (kernels/simd_pricing.hpp), or libm where the CPU lacks them.
void BM_Pricing_PriceGreeksLanes_1core(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const OptionSet o = random_options(n);
  std::vector<OptionValue> out(n);
  for (auto _ : state) {
    detail::black76_lanes(o.call.data(), o.spot.data(), o.strike.data(), o.t.data(), o.rate.data(), o.vol.data(),
                          out.data(), static_cast<std::int64_t>(n));
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
  state.SetLabel(detail::pricing_path());
}
BENCHMARK(BM_Pricing_PriceGreeksLanes_1core)->Arg(100000);

// QuantLib AnalyticEuropeanEngine at its best: every instrument keeps its own
// objects (quotes, process, engine, option), built once; a market update sets its
// quotes, which invalidates that option alone, then price and Greeks are read.
void BM_QuantLib_PriceGreeks_1core(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const OptionSet o = random_options(n);
  const ql::Date today(1, ql::January, 2026);
  ql::Settings::instance().evaluationDate() = today;
  const ql::DayCounter dc = ql::Actual365Fixed();
  struct Priced {
    ql::ext::shared_ptr<ql::SimpleQuote> spot, vol;
    std::unique_ptr<ql::EuropeanOption> option;
  };
  std::vector<Priced> book;
  for (std::size_t i = 0; i < n; ++i) {
    Priced p{ql::ext::make_shared<ql::SimpleQuote>(o.spot[i]), ql::ext::make_shared<ql::SimpleQuote>(o.vol[i]), nullptr};
    ql::Handle<ql::YieldTermStructure> r(ql::ext::make_shared<ql::FlatForward>(today, o.rate[i], dc));
    ql::Handle<ql::YieldTermStructure> q(ql::ext::make_shared<ql::FlatForward>(today, 0.0, dc));
    ql::Handle<ql::BlackVolTermStructure> v(
        ql::ext::make_shared<ql::BlackConstantVol>(today, ql::NullCalendar(), ql::Handle<ql::Quote>(p.vol), dc));
    auto process = ql::ext::make_shared<ql::BlackScholesMertonProcess>(ql::Handle<ql::Quote>(p.spot), q, r, v);
    p.option = std::make_unique<ql::EuropeanOption>(
        ql::ext::make_shared<ql::PlainVanillaPayoff>(o.call[i] ? ql::Option::Call : ql::Option::Put, o.strike[i]),
        ql::ext::make_shared<ql::EuropeanExercise>(today + static_cast<int>(o.t[i] * 365)));
    p.option->setPricingEngine(ql::ext::make_shared<ql::AnalyticEuropeanEngine>(process));
    book.push_back(std::move(p));
  }
  double sink = 0, bump = 0;
  for (auto _ : state) {
    bump = bump == 0 ? 1e-9 : 0;  // a new quote value each pass, so nothing is served from cache
    for (std::size_t i = 0; i < n; ++i) {
      book[i].spot->setValue(o.spot[i] + bump);
      const ql::EuropeanOption& opt = *book[i].option;
      sink += opt.NPV() + opt.delta() + opt.gamma() + opt.vega() + opt.theta() + opt.rho();
    }
  }
  benchmark::DoNotOptimize(sink);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}
BENCHMARK(BM_QuantLib_PriceGreeks_1core)->Arg(1000)->Arg(20000);

// Generated books, shared between benchmarks (generation and loading are not timed).
struct Fixture {
  Book book;
  Market market;
};
Fixture& fixture(std::int64_t accounts) {
  static std::map<std::int64_t, std::unique_ptr<Fixture>> cache;
  auto& slot = cache[accounts];
  if (!slot) {
    const auto dir = std::filesystem::temp_directory_path() / ("vr-bench-" + std::to_string(accounts));
    if (!std::filesystem::exists(dir / "market.json")) {
      io::GenBookOptions opt;
      opt.accounts = static_cast<std::uint64_t>(accounts);
      io::gen_book(opt, dir);
    }
    slot = std::make_unique<Fixture>(Fixture{io::load_book(dir), io::load_market(dir / "market.json")});
  }
  return *slot;
}

Device bench_device() {
  const char* d = std::getenv("VR_BENCH_DEVICE");
  return d ? parse_device(d) : Device::cpu;
}

// Bytes the revaluation must move at least once: instruments in, instrument
// results and scenario rows out, positions and blocks and accounts.
double floor_bytes(const Fixture& f, std::int64_t blocks) {
  const double inst = static_cast<double>(f.book.instrument_count()) * (26 + 7 * 8 + 31 * 8);
  const double pos = static_cast<double>(f.book.position_count()) * (4 + 8 + 8);
  const double blk = static_cast<double>(blocks) * (8 + 4 + 10 * 8);
  const double acc = static_cast<double>(f.book.account_count()) * (8 + 8 + 5 * 8 + 1);
  return inst + pos + blk + acc;
}

void BM_Engine_FullRevalue(benchmark::State& state) {
  Fixture& f = fixture(state.range(0));
  Engine engine(f.book, default_methodology(), bench_device());
  engine.revalue(f.market);
  for (auto _ : state) engine.revalue(f.market);  // synchronises before returning
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * f.book.position_count()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * floor_bytes(f, engine.block_count())));
  state.counters["accounts"] = static_cast<double>(f.book.account_count());
  state.counters["positions"] = static_cast<double>(f.book.position_count());
  state.counters["instruments"] = static_cast<double>(f.book.instrument_count());
  state.SetLabel(engine.device_name());
}
BENCHMARK(BM_Engine_FullRevalue)->Arg(10000)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Engine_IncrementalOneUnderlying(benchmark::State& state) {
  Fixture& f = fixture(state.range(0));
  Engine engine(f.book, default_methodology(), bench_device());
  engine.revalue(f.market);
  UnderlyingMarket m = f.market.underlyings.at("BTC");
  for (auto _ : state) {
    m.spot *= 1.0001;
    engine.update_underlying("BTC", m);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * f.book.position_count() / 3));
  state.SetLabel(engine.device_name());
}
BENCHMARK(BM_Engine_IncrementalOneUnderlying)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMillisecond)->UseRealTime();

// Instruments priced with their full 31-scenario rows (no positions).
void BM_Engine_ScenarioTable(benchmark::State& state) {
  Fixture& f = fixture(state.range(0));
  Book only_instruments = f.book;
  only_instruments.pos_account.clear();
  only_instruments.pos_instrument.clear();
  only_instruments.pos_quantity.clear();
  only_instruments.pos_entry.clear();
  only_instruments.account_id.clear();
  only_instruments.cash.clear();
  Engine engine(only_instruments, default_methodology(), bench_device());
  for (auto _ : state) engine.revalue(f.market);
  const double n = static_cast<double>(f.book.instrument_count());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n * 32));  // option valuations
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n * (26 + 7 * 8 + 31 * 8)));
  state.counters["instruments"] = n;
  state.SetLabel(engine.device_name());
}
BENCHMARK(BM_Engine_ScenarioTable)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
