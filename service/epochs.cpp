// Epoch captures, trees, proofs and files.
#include "service/epochs.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <sstream>

#include "chain/abi_word.hpp"
#include "core/error.hpp"
#include "service/state_store.hpp"

namespace vaultrisk::service {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr char kMagic[8] = {'V', 'R', 'E', 'P', 'O', 'C', 'H', '1'};

template <class T>
void put(std::string& out, const T& x) {
  out.append(reinterpret_cast<const char*>(&x), sizeof x);
}

template <class T>
void put_vec(std::string& out, const std::vector<T>& v) {
  out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

json proof_json(const std::vector<chain::Hash32>& proof) {
  json p = json::array();
  for (const auto& h : proof) p.push_back(chain::to_hex(h));
  return p;
}

}  // namespace

json leaf_json(const chain::StateLeaf& l) {
  return json::array({std::to_string(l.account), l.equity.decimal(true), l.mm.decimal(false), l.im.decimal(false), l.status});
}

chain::StateLeaf leaf_from_json(std::uint64_t epoch, const json& row, const std::string& where) {
  if (!row.is_array() || row.size() != 5 || !row[0].is_string() || !row[1].is_string() || !row[2].is_string() ||
      !row[3].is_string() || !row[4].is_number_integer() || row[4].get<long long>() < 0 || row[4].get<long long>() > chain::StateLeaf::kQuarantined)
    throw input_error(where + ": a leaf is [account, equity, mm, im, status] with decimal strings and status 0..3");
  chain::StateLeaf l;
  l.epoch = epoch;
  const chain::Word a = chain::Word::from_decimal(row[0].get<std::string>(), false, where + ".account");
  for (int b = 0; b < 24; ++b)
    if (a.be[b]) throw input_error(where + ".account: does not fit 64 bits");
  for (int b = 24; b < 32; ++b) l.account = l.account << 8 | a.be[b];
  l.equity = chain::Word::from_decimal(row[1].get<std::string>(), true, where + ".equity");
  l.mm = chain::Word::from_decimal(row[2].get<std::string>(), false, where + ".mm");
  l.im = chain::Word::from_decimal(row[3].get<std::string>(), false, where + ".im");
  l.status = row[4].get<std::uint8_t>();
  return l;
}

EpochTrees::EpochTrees(const EpochCapture& c) : epoch_(c.epoch), intents_(c.intents) {
  std::vector<std::size_t> order(c.account.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return c.account[x] < c.account[y]; });
  leaves_.resize(order.size());
  leaf_hashes_.resize(order.size());
  // A margin that cannot be encoded is reported after the loop (no exception may leave it).
  std::atomic<bool> bad{false};
#pragma omp parallel for schedule(static)
  for (std::size_t k = 0; k < order.size(); ++k) {
    const std::size_t i = order[k];
    try {
      leaves_[k] = chain::StateLeaf::from_values(c.epoch, c.account[i], c.equity[i], c.mm[i], c.im[i], c.status[i]);
      leaf_hashes_[k] = leaves_[k].hash();
    } catch (...) {
      bad = true;
    }
  }
  if (bad)
    for (std::size_t i : order)  // names the first bad account
      chain::StateLeaf::from_values(c.epoch, c.account[i], c.equity[i], c.mm[i], c.im[i], c.status[i]);
  if (!leaves_.empty()) {
    state_tree_.emplace(leaf_hashes_);
    state_root_ = state_tree_->root();
  }
  if (!intents_.empty()) {
    std::vector<chain::Hash32> l;
    for (const auto& d : intents_) l.push_back(chain::intent_leaf(d));
    intents_tree_.emplace(std::move(l));
    intents_root_ = intents_tree_->root();
  }
}

std::optional<json> EpochTrees::account_proof(std::uint64_t account) const {
  auto it = std::lower_bound(leaves_.begin(), leaves_.end(), account,
                             [](const chain::StateLeaf& l, std::uint64_t a) { return l.account < a; });
  if (it == leaves_.end() || it->account != account) return std::nullopt;
  const chain::Hash32& h = leaf_hashes_[static_cast<std::size_t>(it - leaves_.begin())];
  const json v = leaf_json(*it);
  return json{{"epoch", epoch_},
              {"account", std::to_string(account)},
              {"leaf", {{"epoch", std::to_string(epoch_)}, {"account", v[0]}, {"equity", v[1]}, {"mm", v[2]},
                        {"im", v[3]}, {"status", v[4]}}},
              {"leafHash", chain::to_hex(h)},
              {"proof", proof_json(state_tree_->proof(h))},
              {"stateRoot", chain::to_hex(state_root_)}};
}

std::optional<json> EpochTrees::intent_proof(const chain::Hash32& digest) const {
  if (std::find(intents_.begin(), intents_.end(), digest) == intents_.end()) return std::nullopt;
  return json{{"epoch", epoch_},
              {"digest", chain::to_hex(digest)},
              {"proof", proof_json(intents_tree_->proof(chain::intent_leaf(digest)))},
              {"intentsRoot", chain::to_hex(intents_root_)}};
}

EpochStore::EpochStore(const fs::path& state_dir) : dir_(state_dir / "epochs") { fs::create_directories(dir_); }

void EpochStore::write_capture(const EpochCapture& c) const {
  std::string out(kMagic, sizeof kMagic);
  const std::uint64_t n = c.account.size(), ni = c.intents.size();
  put(out, c.epoch);
  put(out, c.started_ms);
  put(out, c.closed_ms);
  put(out, n);
  put(out, ni);
  put_vec(out, c.account);
  put_vec(out, c.equity);
  put_vec(out, c.mm);
  put_vec(out, c.im);
  put_vec(out, c.status);
  for (const auto& h : c.intents) out.append(reinterpret_cast<const char*>(h.data()), h.size());
  write_durable(dir_ / (std::to_string(c.epoch) + ".capture"), out);
}

EpochCapture EpochStore::read_capture(std::uint64_t epoch) const {
  const fs::path p = dir_ / (std::to_string(epoch) + ".capture");
  std::ifstream f(p, std::ios::binary);
  if (!f) throw input_error(p.string() + ": no such epoch (epochs close every --epoch-seconds; see " + dir_.string() + ")");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string b = ss.str();
  std::size_t at = 0;
  auto take = [&](void* dst, std::size_t bytes) {
    if (at + bytes > b.size()) throw input_error(p.string() + ": truncated epoch capture");
    std::memcpy(dst, b.data() + at, bytes);
    at += bytes;
  };
  char magic[8];
  take(magic, 8);
  if (std::memcmp(magic, kMagic, 8) != 0) throw input_error(p.string() + ": not a vaultrisk epoch capture");
  EpochCapture c;
  std::uint64_t n = 0, ni = 0;
  take(&c.epoch, 8);
  take(&c.started_ms, 8);
  take(&c.closed_ms, 8);
  take(&n, 8);
  take(&ni, 8);
  if (c.epoch != epoch) throw input_error(p.string() + ": holds epoch " + std::to_string(c.epoch));
  if (n > b.size() || ni > b.size()) throw input_error(p.string() + ": damaged epoch capture");
  c.account.resize(n);
  c.equity.resize(n);
  c.mm.resize(n);
  c.im.resize(n);
  c.status.resize(n);
  c.intents.resize(ni);
  take(c.account.data(), n * 8);
  take(c.equity.data(), n * 8);
  take(c.mm.data(), n * 8);
  take(c.im.data(), n * 8);
  take(c.status.data(), n);
  for (auto& h : c.intents) take(h.data(), 32);
  if (at != b.size()) throw input_error(p.string() + ": trailing bytes in epoch capture");
  return c;
}

std::vector<std::uint64_t> EpochStore::captured() const {
  std::vector<std::uint64_t> out;
  for (const auto& e : fs::directory_iterator(dir_)) {
    const std::string name = e.path().filename().string();
    if (e.path().extension() != ".capture") continue;
    const std::string stem = e.path().stem().string();
    if (stem.empty() || stem.find_first_not_of("0123456789") != std::string::npos) continue;
    out.push_back(std::stoull(stem));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<json> EpochStore::summary(std::uint64_t epoch) const {
  const fs::path p = dir_ / (std::to_string(epoch) + ".json");
  std::ifstream f(p);
  if (!f) return std::nullopt;
  try {
    return json::parse(f);
  } catch (const std::exception& e) {
    throw input_error(p.string() + ": " + e.what());
  }
}

void EpochStore::write_summary(std::uint64_t epoch, const json& s) const {
  write_durable(dir_ / (std::to_string(epoch) + ".json"), s.dump(2) + "\n");
}

std::string epoch_summary_subject(std::uint64_t epoch) { return "vaultrisk.epoch." + std::to_string(epoch) + ".summary"; }

std::string epoch_chunk_subject(std::uint64_t epoch, const std::string& field, std::size_t chunk) {
  return "vaultrisk.epoch." + std::to_string(epoch) + "." + field + "." + std::to_string(chunk);
}

}  // namespace vaultrisk::service
