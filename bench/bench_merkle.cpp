// Epoch tree benchmark: build the state tree of N accounts (fixed-point encoding,
// leaf hashing, the StandardMerkleTree), write the epoch capture durably, and
// produce proofs. Prints JSON; with --dump FILE also writes the leaf values (JSON
// array rows) so that bench/anchoring.mjs can rebuild the root with OpenZeppelin's
// implementation and compare.
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "service/epochs.hpp"

using namespace vaultrisk;
using Clock = std::chrono::steady_clock;

static double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

int main(int argc, char** argv) {
  std::size_t n = 1000000, proofs = 1000;
  std::string dump;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--accounts") n = std::stoull(argv[i + 1]);
    else if (k == "--proofs") proofs = std::stoull(argv[i + 1]);
    else if (k == "--dump") dump = argv[i + 1];
  }
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
  const auto dir = std::filesystem::temp_directory_path() / "vr-bench-merkle";
  std::filesystem::remove_all(dir);
  const service::EpochStore store(dir);
  auto t0 = Clock::now();
  store.write_capture(c);
  const double capture_ms = ms_since(t0);
  t0 = Clock::now();
  const service::EpochTrees trees(c);
  const double build_ms = ms_since(t0);
  t0 = Clock::now();
  std::size_t depth = 0;
  for (std::size_t k = 0; k < proofs; ++k) depth += (*trees.account_proof(1 + (rng() % n)))["proof"].size();
  const double proof_us = ms_since(t0) * 1000 / static_cast<double>(proofs);
  if (!dump.empty()) {
    std::ofstream f(dump);
    for (const auto& l : trees.leaves()) f << service::leaf_json(l).dump() << '\n';
  }
  std::filesystem::remove_all(dir);
  std::printf("{\"accounts\": %zu, \"threads\": %d, \"capture_write_ms\": %.1f, \"tree_build_ms\": %.1f, "
              "\"proof_us\": %.2f, \"proof_depth\": %.1f, \"root\": \"%s\"}\n",
              n, omp_get_max_threads(), capture_ms, build_ms, proof_us, static_cast<double>(depth) / static_cast<double>(proofs),
              chain::to_hex(trees.state_root()).c_str());
}
