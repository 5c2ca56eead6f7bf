// Epoch benchmarks (Google Benchmark): the durable capture the engine thread writes
// when an epoch closes, the state tree over N accounts (fixed-point encoding, leaf
// hashing, the StandardMerkleTree; label: the root), and one account's proof.
//   vr_bench_merkle [--accounts N] [--dump FILE] [benchmark flags]
// --dump writes the N leaf values (JSON array rows) first, so that
// bench/anchoring.mjs can rebuild the same root with @openzeppelin/merkle-tree.
#include <benchmark/benchmark.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "service/epochs.hpp"

using namespace vaultrisk;

namespace {

service::EpochCapture make_capture(std::size_t n) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0, 1);
  service::EpochCapture c;
  c.epoch = 42;
  for (std::size_t i = 0; i < n; ++i) {
    c.account.push_back(i + 1);
    c.equity.push_back((u(rng) - 0.1) * 1e6);
    c.mm.push_back(u(rng) * 1e5);
    c.im.push_back(c.mm.back() * 1.25);
    c.status.push_back(static_cast<std::uint8_t>(rng() % 3));
  }
  return c;
}

const service::EpochCapture& capture(std::size_t n) {
  static std::size_t cached_n = 0;
  static service::EpochCapture c;
  if (cached_n != n) c = make_capture(n), cached_n = n;
  return c;
}

void BM_Epoch_CaptureWrite(benchmark::State& state) {
  const auto& c = capture(static_cast<std::size_t>(state.range(0)));
  const auto dir = std::filesystem::temp_directory_path() / "vr-bench-epochs";
  const service::EpochStore store(dir);
  for (auto _ : state) store.write_capture(c);  // temp file, fsync, rename, fsync of the folder
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0) * 33);
  std::filesystem::remove_all(dir);
}

void BM_Epoch_TreeBuild(benchmark::State& state) {
  const auto& c = capture(static_cast<std::size_t>(state.range(0)));
  std::string root;
  for (auto _ : state) {
    const service::EpochTrees t(c);
    root = chain::to_hex(t.state_root());
    benchmark::DoNotOptimize(root);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
  state.SetLabel(root);
}

void BM_Epoch_Proof(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const service::EpochTrees t(capture(n));
  std::mt19937_64 rng(3);
  std::size_t depth = 0;
  for (auto _ : state) {
    const auto p = t.account_proof(1 + rng() % n);  // leaf values, hash, proof and root as JSON, as the API answers
    depth = (*p)["proof"].size();
    benchmark::DoNotOptimize(depth);
  }
  state.counters["depth"] = static_cast<double>(depth);
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t accounts = 1000000;
  std::string dump;
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--accounts") && i + 1 < argc) accounts = std::stoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--dump") && i + 1 < argc) dump = argv[++i];
    else rest.push_back(argv[i]);
  }
  if (!dump.empty()) {
    std::ofstream f(dump);
    const service::EpochTrees trees(capture(static_cast<std::size_t>(accounts)));  // named: leaves() of a temporary would dangle
    for (const auto& l : trees.leaves()) f << service::leaf_json(l).dump() << '\n';
  }
  benchmark::RegisterBenchmark("BM_Epoch_CaptureWrite", BM_Epoch_CaptureWrite)->Arg(accounts)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_Epoch_TreeBuild", BM_Epoch_TreeBuild)->Arg(accounts)->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::RegisterBenchmark("BM_Epoch_Proof", BM_Epoch_Proof)->Arg(accounts)->Unit(benchmark::kMicrosecond);
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
