#include "service/partition_snapshot.hpp"

#include <bit>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstring>

#include "core/checksum.hpp"
#include "core/error.hpp"
#include "core/limits.hpp"
#include "io/book_csv.hpp"
#include "service/nats_client.hpp"
#include "service/partitions.hpp"

namespace vaultrisk::service {

using json = nlohmann::json;

namespace {
std::string prefix(std::uint32_t k) { return "vaultrisk.snap.p" + std::to_string(k); }

// The book's instruments (and underlyings), with no accounts or positions.
Book instruments_of(const Book& book) {
  Book out;
  out.underlyings = book.underlyings;
  out.instrument_id = book.instrument_id;
  out.kind = book.kind;
  out.underlying = book.underlying;
  out.expiry = book.expiry;
  out.strike = book.strike;
  out.is_call = book.is_call;
  return out;
}
}  // namespace

Book partition_book(const Book& book, std::uint32_t k, std::uint32_t partitions) {
  Book out = instruments_of(book);
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

// Format 2: a JSON header line, the instruments as CSV (their ids are strings), the
// accounts' and positions' columns as raw little-endian arrays (no parsing: a
// takeover's state is a copy), then the meta as JSON. Format 1 (three CSV files and
// the meta), written by earlier versions, is still read.
namespace {

constexpr const char* kFormat1 = "vaultrisk-partition-snapshot/1";
constexpr const char* kFormat2 = "vaultrisk-partition-snapshot/2";
static_assert(std::endian::native == std::endian::little, "snapshot columns are stored little-endian");

template <class T>
void put_column(std::string& out, const std::vector<T>& v) {
  out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

template <class T>
void get_column(std::string_view& in, std::vector<T>& v, std::size_t n) {
  v.resize(n);
  std::memcpy(v.data(), in.data(), n * sizeof(T));
  in.remove_prefix(n * sizeof(T));
}

Book decode_columns(std::string_view content, const json& header, const std::string& where) {
  const auto sizes = header.at("sizes").get<std::vector<std::size_t>>();
  if (sizes.size() != 2) throw input_error(where + ": header.sizes: expected 2 sizes");
  const std::size_t accounts = header.at("accounts"), positions = header.at("positions");
  constexpr std::size_t kAccountBytes = 8 + 8, kPositionBytes = 4 + 4 + 8 + 8;
  if (accounts > INT32_MAX || positions > (content.size() / kPositionBytes) ||
      content.size() != sizes[0] + accounts * kAccountBytes + positions * kPositionBytes + sizes[1])
    throw input_error(where + ": sizes do not add up to the content");
  io::BookFiles f = io::format_book(Book{});  // the two headers, no rows
  f.instruments = std::string(content.substr(0, sizes[0]));
  content.remove_prefix(sizes[0]);
  Book book = io::parse_book(std::move(f));
  get_column(content, book.account_id, accounts);
  get_column(content, book.cash, accounts);
  get_column(content, book.pos_account, positions);
  get_column(content, book.pos_instrument, positions);
  get_column(content, book.pos_quantity, positions);
  get_column(content, book.pos_entry, positions);
  // The loader's numeric domain, so that nothing out of it enters from here either.
  for (std::size_t a = 0; a < accounts; ++a)
    if (!(std::fabs(book.cash[a]) <= limits::kMaxCash))
      throw input_error(where + ": account " + std::to_string(book.account_id[a]) + ": cash out of its domain");
  const auto instruments = static_cast<std::int32_t>(book.instrument_count());
  for (std::size_t p = 0; p < positions; ++p)
    if (book.pos_account[p] < 0 || book.pos_account[p] >= static_cast<std::int32_t>(accounts) ||
        book.pos_instrument[p] < 0 || book.pos_instrument[p] >= instruments ||
        !(std::fabs(book.pos_quantity[p]) <= limits::kMaxPosition) ||
        !(book.pos_entry[p] >= 0.0 && book.pos_entry[p] <= limits::kMaxPrice))
      throw input_error(where + ": position " + std::to_string(p) + " out of its domain");
  return book;
}

}  // namespace

std::string encode_partition_snapshot(const Book& book, const json& meta) {
  const std::string instruments = io::format_book(instruments_of(book)).instruments;
  const std::string m = meta.dump(-1, ' ', false, json::error_handler_t::replace);
  const json header = {{"format", kFormat2},
                       {"accounts", book.account_count()},
                       {"positions", book.position_count()},
                       {"sizes", {instruments.size(), m.size()}}};
  std::string out = header.dump();
  out += '\n';
  out.reserve(out.size() + instruments.size() + book.account_count() * 16 + book.position_count() * 24 + m.size() + 32);
  out += instruments;
  put_column(out, book.account_id);
  put_column(out, book.cash);
  put_column(out, book.pos_account);
  put_column(out, book.pos_instrument);
  put_column(out, book.pos_quantity);
  put_column(out, book.pos_entry);
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
  const std::string format = header.value("format", "");
  const std::string_view body = content.substr(nl + 1);
  try {
    if (format == kFormat2) {
      const std::size_t meta_size = header.at("sizes").at(1);
      book = decode_columns(body, header, where);
      meta = json::parse(body.substr(body.size() - meta_size));
      return;
    }
    if (format != kFormat1) throw input_error(where + ": unknown format '" + format + "'");
    const auto sizes = header.at("sizes").get<std::vector<std::size_t>>();
    if (sizes.size() != 4) throw input_error(where + ": header.sizes: expected 4 sizes");
    std::size_t at = 0, total = 0;
    for (std::size_t s : sizes) total += s;
    if (body.size() != total) throw input_error(where + ": sizes do not add up to the content");
    auto take = [&](std::size_t n) {
      std::string s(body.substr(at, n));
      at += n;
      return s;
    };
    io::BookFiles f;
    f.instruments = take(sizes[0]);
    f.accounts = take(sizes[1]);
    f.positions = take(sizes[2]);
    const std::string m = take(sizes[3]);
    book = io::parse_book(std::move(f));
    meta = json::parse(m);
  } catch (const input_error& e) {
    const std::string what = e.what();
    throw input_error(what.rfind(where, 0) == 0 ? what : where + ": " + what);
  } catch (const json::exception& e) {
    throw input_error(where + ": " + e.what());
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

std::optional<std::string> get_partition_snapshot(NatsClient& nats, std::uint32_t k,
                                                  const std::function<void(std::uint64_t vault_seq)>& on_head) {
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
    if (on_head) on_head(head.value("vault_seq", std::uint64_t{0}));
    std::string blob;
    blob.reserve(head.at("bytes").get<std::size_t>());
    // Every chunk asked for at once, as direct gets; a replica that has not got a
    // chunk yet (or a stream without direct gets) leaves it to the leader's get.
    std::vector<std::string> subjects;
    for (std::size_t i = 0; i < chunks; ++i) subjects.push_back(p + ".g" + std::to_string(gen) + ".c" + std::to_string(i));
    std::vector<std::optional<std::string>> parts(chunks);
    try {
      parts = nats.js_direct_get_last(kSnapshotStream, subjects);
    } catch (const std::exception&) {
    }
    bool missing = false;
    for (std::size_t i = 0; i < chunks && !missing; ++i) {
      const std::string& subject = subjects[i];
      const auto part = parts[i] ? std::move(parts[i]) : nats.js_get_last(kSnapshotStream, subject);
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
