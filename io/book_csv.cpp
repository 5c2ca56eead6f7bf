// Book folder loader.
#include "io/book_csv.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <map>
#include <unordered_map>

#include <omp.h>

#include "core/error.hpp"
#include "core/limits.hpp"
#include "io/csv_reader.hpp"
#include "io/flat_index.hpp"
#include "io/number_format.hpp"

namespace vaultrisk::io {

namespace {

void load_instruments(Text text, Book& book,
                      std::unordered_map<std::string, std::int32_t>& index) {
  CsvReader r("instruments.csv", std::move(text), {"id", "kind", "underlying", "expiry", "strike", "type"});
  enum { ID, KIND, UND, EXPIRY, STRIKE, TYPE };
  std::map<std::string, std::int32_t> und_index;  // first-seen numbering, canonicalised later
  std::vector<std::int64_t> lines;
  while (r.next()) {
    const std::string id(r.field(ID));
    if (!valid_token(id, 64, true)) r.fail(ID, "must match [A-Za-z0-9._-]{1,64}, got '" + id + "'");
    const auto [it, fresh] = index.emplace(id, static_cast<std::int32_t>(book.instrument_id.size()));
    if (!fresh) r.fail(ID, "duplicate instrument '" + id + "' (first on line " + std::to_string(lines[it->second]) + ")");
    const std::string_view und = r.field(UND);
    if (!valid_token(und, 32, false)) r.fail(UND, "must match [A-Za-z0-9_-]{1,32}, got '" + std::string(und) + "'");
    const auto u = und_index.emplace(std::string(und), static_cast<std::int32_t>(und_index.size())).first->second;
    const std::string_view kind = r.field(KIND);
    book.instrument_id.push_back(id);
    book.underlying.push_back(u);
    lines.push_back(r.line());
    if (kind == "option") {
      const double expiry = r.number(EXPIRY);
      if (expiry < 0 || expiry >= limits::kMaxTime || expiry != static_cast<double>(static_cast<std::int64_t>(expiry)))
        r.fail(EXPIRY, "must be whole unix seconds in [0, 4102444800)");
      const double strike = r.number(STRIKE);
      if (!(strike >= limits::kMinPrice && strike <= limits::kMaxPrice)) r.fail(STRIKE, "must be in [1e-08, 1e+09]");
      const std::string_view type = r.field(TYPE);
      if (type != "C" && type != "P") r.fail(TYPE, "must be C or P, got '" + std::string(type) + "'");
      book.kind.push_back(InstrumentKind::option);
      book.expiry.push_back(expiry);
      book.strike.push_back(strike);
      book.is_call.push_back(type == "C");
    } else if (kind == "perp") {
      for (int c : {EXPIRY, STRIKE, TYPE})
        if (!r.field(c).empty()) r.fail(c, "must be empty for a perp");
      book.kind.push_back(InstrumentKind::perp);
      book.expiry.push_back(0.0);
      book.strike.push_back(0.0);
      book.is_call.push_back(0);
    } else {
      r.fail(KIND, "must be option or perp, got '" + std::string(kind) + "'");
    }
  }
  book.underlyings.resize(und_index.size());
  for (const auto& [name, u] : und_index) book.underlyings[u] = name;
  canonicalize_underlyings(book);
}

void load_accounts(Text text, Book& book,
                   FlatIndex64& index) {
  CsvReader r("accounts.csv", std::move(text), {"account", "cash"});
  std::vector<std::int64_t> lines;
  while (r.next()) {
    const std::uint64_t id = r.uint64(0);
    const std::int32_t was = index.insert(id, static_cast<std::int32_t>(book.account_id.size()));
    if (was >= 0) r.fail(0, "duplicate account " + std::to_string(id) + " (first on line " + std::to_string(lines[static_cast<std::size_t>(was)]) + ")");
    if (book.account_id.size() >= static_cast<std::size_t>(INT32_MAX)) r.fail_line("too many accounts");
    book.account_id.push_back(id);
    const double cash = r.number(1);
    if (!(std::fabs(cash) <= limits::kMaxCash)) r.fail(1, "|cash| must be at most 1e+18");
    book.cash.push_back(cash);
    lines.push_back(r.line());
  }
}

constexpr const char* kPositionsFile = "positions.csv";

// One run of positions.csv's rows (CsvReader::split), parsed on its own.
struct PositionRows {
  std::vector<std::int32_t> account, instrument;
  std::vector<double> quantity, entry;
  std::exception_ptr error;  // the first bad row of this run
};

void parse_positions(CsvReader& r, const Book& book, const FlatIndex& inst,
                     const FlatIndex64& accounts, PositionRows& out) {
  enum { ACCOUNT, INSTRUMENT, QTY, ENTRY };
  const std::size_t hint = r.size_hint() / 2;
  out.account.reserve(hint);
  out.instrument.reserve(hint);
  out.quantity.reserve(hint);
  out.entry.reserve(hint);
  // Positions usually come grouped by account: remember the last lookup.
  std::uint64_t last_id = 0;
  std::int32_t last_index = -1;
  while (r.next()) {
    const std::uint64_t a = r.uint64(ACCOUNT);
    if (last_index < 0 || a != last_id) {
      const std::int32_t ai = accounts.find(a);
      if (ai < 0) r.fail(ACCOUNT, "unknown account " + std::to_string(a) + " (not in accounts.csv)");
      last_id = a;
      last_index = ai;
    }
    const std::int32_t ii = inst.find(r.field(INSTRUMENT));
    if (ii < 0)
      r.fail(INSTRUMENT, "unknown instrument '" + std::string(r.field(INSTRUMENT)) + "' (not in instruments.csv)");
    const double q = r.number(QTY);
    if (!(std::fabs(q) <= limits::kMaxPosition)) r.fail(QTY, "|quantity| must be at most 1e+12");
    double entry = 0.0;
    if (book.kind[ii] == InstrumentKind::perp) {
      entry = r.number(ENTRY);
      if (!(entry >= 0.0 && entry <= limits::kMaxPrice)) r.fail(ENTRY, "must be in [0, 1e+09]");
    } else {
      r.number_or(ENTRY, 0.0);  // checked, unused for options
    }
    out.account.push_back(last_index);
    out.instrument.push_back(ii);
    out.quantity.push_back(q);
    out.entry.push_back(entry);
  }
}

template <class T>
void append_all(std::vector<T>& into, std::vector<PositionRows>& runs, std::vector<T> PositionRows::*field,
                const std::vector<std::size_t>& at) {
  into.resize(at.back());
#pragma omp parallel for schedule(static, 1)
  for (std::size_t k = 0; k < runs.size(); ++k) {
    std::copy((runs[k].*field).begin(), (runs[k].*field).end(), into.begin() + static_cast<std::ptrdiff_t>(at[k]));
    std::vector<T>().swap(runs[k].*field);  // freed before the next column is allocated
  }
}

void load_positions(Text text, Book& book, const FlatIndex64& accounts) {
  // Views into one buffer of every id, end to end: a lookup's key comparison reads
  // a compact 2 MB (at 100k instruments) instead of a heap string each.
  std::string ids;
  for (const std::string& id : book.instrument_id) ids += id;
  FlatIndex inst(book.instrument_count());
  for (std::size_t i = 0, at = 0; i < book.instrument_count(); at += book.instrument_id[i].size(), ++i)
    inst.insert(std::string_view(ids).substr(at, book.instrument_id[i].size()), static_cast<std::int32_t>(i));

  // The rows in runs parsed in parallel; the error reported is the first run's that
  // has one, which is the first bad row of the file. The file's text is freed as
  // soon as they are parsed, and each column of the runs once it is copied: at 10M
  // positions, 320 MB and then 80 MB a column off the loader's own high-water mark
  // (a whole `price` run peaks later, in the engine, at 1.15 GB either way).
  std::vector<PositionRows> rows;
  {
    CsvReader r(kPositionsFile, std::move(text), {"account", "instrument", "quantity", "entry_price"});
    std::vector<CsvReader> runs = r.split(omp_get_max_threads());
    rows.resize(runs.size());
#pragma omp parallel for schedule(static, 1)
    for (std::size_t k = 0; k < runs.size(); ++k) {
      try {
        parse_positions(runs[k], book, inst, accounts, rows[k]);
      } catch (...) {
        rows[k].error = std::current_exception();
      }
    }
  }
  for (const PositionRows& run : rows)
    if (run.error) std::rethrow_exception(run.error);
  std::vector<std::size_t> at{0};
  for (const PositionRows& run : rows) at.push_back(at.back() + run.account.size());
  const std::size_t n = at.back();
  append_all(book.pos_account, rows, &PositionRows::account, at);
  append_all(book.pos_instrument, rows, &PositionRows::instrument, at);
  append_all(book.pos_quantity, rows, &PositionRows::quantity, at);
  append_all(book.pos_entry, rows, &PositionRows::entry, at);
  rows.clear();

  // Duplicate (account, instrument) pairs. Each account's positions, in file order:
  // where the file groups them by account (gen-book, most exports) they are one
  // range each, found in parallel; otherwise a counting sort lists them.
  const auto accounts_n = static_cast<std::int64_t>(book.account_count());
  const auto n64 = static_cast<std::int64_t>(n);
  std::int64_t disorder = 0;
#pragma omp parallel for schedule(static) reduction(+ : disorder)
  for (std::int64_t p = 1; p < n64; ++p) disorder += book.pos_account[p] < book.pos_account[p - 1];
  std::vector<std::int64_t> begin(book.account_count() + 1, 0), order;
  if (disorder == 0) {  // begin[a] = the first position of account a or after
#pragma omp parallel for schedule(static)
    for (std::int64_t p = 0; p <= n64; ++p) {
      const std::int64_t prev = p == 0 ? -1 : book.pos_account[p - 1], cur = p == n64 ? accounts_n : book.pos_account[p];
      for (std::int64_t a = prev + 1; a <= cur; ++a) begin[a] = p;
    }
  } else {
    for (std::size_t p = 0; p < n; ++p) ++begin[book.pos_account[p] + 1];
    for (std::size_t a = 0; a < book.account_count(); ++a) begin[a + 1] += begin[a];
    order.resize(n);
    std::vector<std::int64_t> fill(begin.begin(), begin.end() - 1);
    for (std::size_t p = 0; p < n; ++p) order[fill[book.pos_account[p]]++] = static_cast<std::int64_t>(p);
  }
  const auto position_at = [&](std::int64_t k) { return order.empty() ? k : order[k]; };
  // Accounts in parallel; the one reported is the first (lowest index) with a duplicate.
  std::int64_t first_bad = accounts_n;
#pragma omp parallel
  {
    std::vector<std::int32_t> held;
#pragma omp for schedule(static) reduction(min : first_bad)
    for (std::int64_t a = 0; a < accounts_n; ++a) {
      if (begin[a + 1] - begin[a] < 2) continue;
      held.clear();
      for (std::int64_t k = begin[a]; k < begin[a + 1]; ++k) held.push_back(book.pos_instrument[position_at(k)]);
      std::sort(held.begin(), held.end());
      if (std::adjacent_find(held.begin(), held.end()) != held.end()) first_bad = std::min(first_bad, a);
    }
  }
  if (first_bad < accounts_n) {
    // Its positions in file order, stably by instrument: the first equal neighbours
    // name the instrument and the two lines.
    std::vector<std::int64_t> mine;
    for (std::int64_t k = begin[first_bad]; k < begin[first_bad + 1]; ++k) mine.push_back(position_at(k));
    std::stable_sort(mine.begin(), mine.end(),
                     [&](std::int64_t x, std::int64_t y) { return book.pos_instrument[x] < book.pos_instrument[y]; });
    const auto it = std::adjacent_find(mine.begin(), mine.end(), [&](std::int64_t x, std::int64_t y) {
      return book.pos_instrument[x] == book.pos_instrument[y];
    });
    const std::int64_t was = *it, again = *(it + 1);  // rows are numbered from line 2: line = index + 2
    throw input_error(std::string(kPositionsFile) + ":" + std::to_string(again + 2) + ": field 'instrument': duplicate position of account " +
                      std::to_string(book.account_id[first_bad]) + " in '" + book.instrument_id[book.pos_instrument[was]] +
                      "' (first on line " + std::to_string(was + 2) + ")");
  }
}

}  // namespace

namespace {
Book parse_texts(Text instruments_csv, Text accounts_csv, Text positions_csv) {
  Book book;
  std::unordered_map<std::string, std::int32_t> instruments;
  load_instruments(std::move(instruments_csv), book, instruments);
  FlatIndex64 accounts(accounts_csv.data.size() / 16);  // about a row per 16 bytes; it grows past that
  load_accounts(std::move(accounts_csv), book, accounts);
  load_positions(std::move(positions_csv), book, accounts);
  return book;
}
}  // namespace

Book load_book(const std::filesystem::path& dir) {
  if (!std::filesystem::is_directory(dir)) throw input_error(dir.string() + ": not a book folder");
  return parse_texts(Text::map(dir / "instruments.csv"), Text::map(dir / "accounts.csv"), Text::map(dir / "positions.csv"));
}

Book parse_book(BookFiles files) {
  return parse_texts(std::move(files.instruments), std::move(files.accounts), std::move(files.positions));
}

BookFiles format_book(const Book& book) {
  BookFiles f;
  std::string& s = f.instruments;
  s = "id,kind,underlying,expiry,strike,type\n";
  for (std::size_t i = 0; i < book.instrument_count(); ++i) {
    s += book.instrument_id[i] + (book.kind[i] == InstrumentKind::perp ? ",perp," : ",option,") +
         book.underlyings[book.underlying[i]] + ",";
    if (book.kind[i] == InstrumentKind::option) {
      append_number(s, static_cast<std::int64_t>(book.expiry[i]));
      s += ",";
      append_number(s, book.strike[i]);
      s += book.is_call[i] ? ",C" : ",P";
    } else {
      s += ",,";
    }
    s += "\n";
  }
  f.accounts = "account,cash\n";
  for (std::size_t a = 0; a < book.account_count(); ++a) {
    append_number(f.accounts, book.account_id[a]);
    f.accounts += ",";
    append_number(f.accounts, book.cash[a]);
    f.accounts += "\n";
  }
  std::string& p = f.positions;
  p = "account,instrument,quantity,entry_price\n";
  for (std::size_t k = 0; k < book.position_count(); ++k) {
    append_number(p, book.account_id[book.pos_account[k]]);
    p += "," + book.instrument_id[book.pos_instrument[k]] + ",";
    append_number(p, book.pos_quantity[k]);
    p += ",";
    if (book.kind[book.pos_instrument[k]] == InstrumentKind::perp) append_number(p, book.pos_entry[k]);
    p += "\n";
  }
  return f;
}

}  // namespace vaultrisk::io
