#include "service/partition_snapshot.hpp"

#include <chrono>

#include "core/checksum.hpp"
#include "core/error.hpp"
#include "io/book_csv.hpp"
#include "service/nats_client.hpp"
#include "service/partitions.hpp"

namespace vaultrisk::service {

using json = nlohmann::json;

namespace {
std::string prefix(std::uint32_t k) { return "vaultrisk.snap.p" + std::to_string(k); }
}  // namespace

Book partition_book(const Book& book, std::uint32_t k, std::uint32_t partitions) {
  Book out;
  out.underlyings = book.underlyings;
  out.instrument_id = book.instrument_id;
  out.kind = book.kind;
  out.underlying = book.underlying;
  out.expiry = book.expiry;
  out.strike = book.strike;
  out.is_call = book.is_call;
  std::vector<std::int32_t> index(book.account_count(), -1);
  for (std::size_t a = 0; a < book.account_count(); ++a)
    if (partition_of(book.account_id[a], partitions) == k) {
      index[a] = static_cast<std::int32_t>(out.account_id.size());
      out.account_id.push_back(book.account_id[a]);
      out.cash.push_back(book.cash[a]);
    }
  for (std::size_t p = 0; p < book.position_count(); ++p) {
    const std::int32_t a = index[static_cast<std::size_t>(book.pos_account[p])];
    if (a < 0) continue;
    out.pos_account.push_back(a);
    out.pos_instrument.push_back(book.pos_instrument[p]);
    out.pos_quantity.push_back(book.pos_quantity[p]);
    out.pos_entry.push_back(book.pos_entry[p]);
  }
  return out;
}

std::string encode_partition_snapshot(const Book& book, const json& meta) {
  const io::BookFiles f = io::format_book(book);
  const std::string m = meta.dump(-1, ' ', false, json::error_handler_t::replace);
  const json header = {{"format", "vaultrisk-partition-snapshot/1"},
                       {"sizes", {f.instruments.size(), f.accounts.size(), f.positions.size(), m.size()}}};
  std::string out = header.dump();
  out += '\n';
  out.reserve(out.size() + f.instruments.size() + f.accounts.size() + f.positions.size() + m.size() + 32);
  out += f.instruments;
  out += f.accounts;
  out += f.positions;
  out += m;
  return seal(out);
}

void decode_partition_snapshot(std::string_view blob, Book& book, json& meta, const std::string& where) {
  const std::string_view content = unseal(blob, where);
  const auto nl = content.find('\n');
  if (nl == std::string_view::npos) throw input_error(where + ": no header line");
  json header;
  try {
    header = json::parse(content.substr(0, nl));
  } catch (const json::exception& e) {
    throw input_error(where + ": header: " + e.what());
  }
  if (header.value("format", "") != "vaultrisk-partition-snapshot/1")
    throw input_error(where + ": unknown format '" + header.value("format", "") + "'");
  const auto sizes = header.at("sizes").get<std::vector<std::size_t>>();
  if (sizes.size() != 4) throw input_error(where + ": header.sizes: expected 4 sizes");
  std::size_t at = nl + 1, total = 0;
  for (std::size_t s : sizes) total += s;
  if (content.size() - at != total) throw input_error(where + ": sizes do not add up to the content");
  auto take = [&](std::size_t n) {
    std::string s(content.substr(at, n));
    at += n;
    return s;
  };
  io::BookFiles f;
  f.instruments = take(sizes[0]);
  f.accounts = take(sizes[1]);
  f.positions = take(sizes[2]);
  const std::string m = take(sizes[3]);
  try {
    book = io::parse_book(std::move(f));
    meta = json::parse(m);
  } catch (const input_error& e) {
    throw input_error(where + ": " + e.what());
  } catch (const json::exception& e) {
    throw input_error(where + ": meta: " + e.what());
  }
}

std::size_t put_partition_snapshot(NatsClient& nats, std::uint32_t k, const std::string& blob, std::uint64_t vault_seq,
                                   const std::string& instance) {
  const std::string p = prefix(k);
  std::uint64_t old_gen = 0;
  if (const auto head = nats.js_get_last(kSnapshotStream, p + ".head")) {
    try {
      old_gen = json::parse(*head).at("gen").get<std::uint64_t>();
    } catch (const std::exception&) {
      old_gen = 0;  // a damaged head is simply replaced
    }
  }
  // Unique across owners and restarts: the wall clock in ms, after the old generation.
  const auto now = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  const std::uint64_t gen = std::max(now, old_gen + 1);
  const std::size_t chunks = (blob.size() + kSnapshotChunkBytes - 1) / kSnapshotChunkBytes;
  const std::string g = p + ".g" + std::to_string(gen);
  for (std::size_t i = 0; i < chunks; ++i) {
    const std::string_view part = std::string_view(blob).substr(i * kSnapshotChunkBytes, kSnapshotChunkBytes);
    nats.js_publish(g + ".c" + std::to_string(i), part, g + ".c" + std::to_string(i));
  }
  const json head = {{"gen", gen}, {"chunks", chunks}, {"bytes", blob.size()}, {"xxh3", checksum_hex(blob)},
                     {"vault_seq", vault_seq}, {"instance", instance}};
  nats.js_publish(p + ".head", head.dump(), p + ".head." + std::to_string(gen));
  if (old_gen && old_gen != gen) nats.js_purge(kSnapshotStream, p + ".g" + std::to_string(old_gen) + ".>");
  return blob.size();
}

std::optional<std::string> get_partition_snapshot(NatsClient& nats, std::uint32_t k) {
  const std::string p = prefix(k);
  // A writer may purge the generation we are reading once its new head is stored:
  // then read the new head and try again.
  for (int attempt = 0;; ++attempt) {
    const auto head_body = nats.js_get_last(kSnapshotStream, p + ".head");
    if (!head_body) return std::nullopt;
    const std::string where = std::string(kSnapshotStream) + " " + p;
    json head;
    try {
      head = json::parse(*head_body);
    } catch (const json::exception& e) {
      throw input_error(where + ".head: " + e.what());
    }
    const std::uint64_t gen = head.at("gen");
    const std::size_t chunks = head.at("chunks");
    std::string blob;
    blob.reserve(head.at("bytes").get<std::size_t>());
    bool missing = false;
    for (std::size_t i = 0; i < chunks && !missing; ++i) {
      const std::string subject = p + ".g" + std::to_string(gen) + ".c" + std::to_string(i);
      const auto part = nats.js_get_last(kSnapshotStream, subject);
      if (!part) {
        if (attempt >= 2) throw input_error(where + ": chunk " + subject + " of generation " + std::to_string(gen) + " is missing");
        missing = true;
      } else {
        blob += *part;
      }
    }
    if (missing) continue;
    if (checksum_hex(blob) != head.at("xxh3").get<std::string>())
      throw input_error(where + ": generation " + std::to_string(gen) + " does not match its checksum");
    return blob;
  }
}

}  // namespace vaultrisk::service
