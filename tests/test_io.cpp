// Loaders and writers: formats, defaults, and errors that name file, line and field.
#include <gtest/gtest.h>

#include <algorithm>

#include <charconv>
#include <cmath>
#include <cstring>
#include <functional>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/error.hpp"
#include "io/book_csv.hpp"
#include "io/csv_reader.hpp"
#include "io/gen_book.hpp"
#include "io/market_json.hpp"
#include "io/methodology_json.hpp"
#include "io/number_format.hpp"

using namespace vaultrisk;
namespace fs = std::filesystem;

namespace {

class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("vr-io-" + std::to_string(std::random_device{}()))) {
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name, std::ios::binary) << text;
  }

 private:
  fs::path path_;
};

const char* kInstruments =
    "id,kind,underlying,expiry,strike,type\n"
    "BTC-PERP,perp,BTC,,,\n"
    "BTC-C,option,BTC,1769817600,100000,C\n"
    "ETH-P,option,ETH,1769817600,3000,P\n";
const char* kAccounts = "account,cash\n18446744073709551615,1000.5\n7,-3\n";
const char* kPositions =
    "account,instrument,quantity,entry_price\n"
    "7,BTC-PERP,-0.5,95000\n"
    "7,ETH-P,2,\n"
    "18446744073709551615,BTC-C,1,123\n";

void write_book(const TempDir& d, std::string inst = kInstruments, std::string acc = kAccounts,
                std::string pos = kPositions) {
  d.write("instruments.csv", inst);
  d.write("accounts.csv", acc);
  d.write("positions.csv", pos);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const input_error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(BookCsv, LoadsAValidBookWithSortedUnderlyings) {
  TempDir d;
  write_book(d);
  const Book b = io::load_book(d.path());
  ASSERT_EQ(b.instrument_count(), 3u);
  EXPECT_EQ(b.underlyings, (std::vector<std::string>{"BTC", "ETH"}));
  EXPECT_EQ(b.underlying[2], 1);
  EXPECT_EQ(b.kind[0], InstrumentKind::perp);
  EXPECT_EQ(b.expiry[1], 1769817600.0);
  EXPECT_EQ(b.is_call[2], 0);
  EXPECT_EQ(b.account_id[0], 18446744073709551615ull);  // full uint64 range
  EXPECT_EQ(b.cash[1], -3.0);
  ASSERT_EQ(b.position_count(), 3u);
  EXPECT_EQ(b.pos_account[0], 1);
  EXPECT_EQ(b.pos_entry[0], 95000.0);
  EXPECT_EQ(b.pos_entry[2], 0.0);  // options ignore entry_price
}

TEST(BookCsv, AcceptsCrlfBomAndTrailingBlankLines) {
  TempDir d;
  auto crlf = [](std::string s) {
    std::string o;
    for (char c : s) o += c == '\n' ? std::string("\r\n") : std::string(1, c);
    return o;
  };
  write_book(d, "\xEF\xBB\xBF" + crlf(kInstruments) + "\r\n\r\n", crlf(kAccounts), std::string(kPositions) + "\n\n");
  EXPECT_EQ(io::load_book(d.path()).position_count(), 3u);
  // A missing final newline is fine too.
  std::string pos = kPositions;
  pos.pop_back();
  write_book(d, kInstruments, kAccounts, pos);
  EXPECT_EQ(io::load_book(d.path()).position_count(), 3u);
}

TEST(BookCsv, ErrorsNameFileLineAndField) {
  TempDir d;
  const std::string inst = kInstruments;
  const struct { std::string inst, acc, pos, expect; } cases[] = {
      {inst + "X,option,BTC,1769817600.5,1,C\n", kAccounts, kPositions,
       "instruments.csv:5: field 'expiry': must be whole unix seconds in [0, 4102444800)"},
      {inst + "X,option,BT.C,1769817600,1,C\n", kAccounts, kPositions, "instruments.csv:5: field 'underlying'"},
      {inst + "X,option,BTC,,1,C\n", kAccounts, kPositions, "instruments.csv:5: field 'expiry': missing value"},
      {inst + "X,option,BTC,1769817600,0,C\n", kAccounts, kPositions, "instruments.csv:5: field 'strike': must be in [1e-08, 1e+09]"},
      {inst + "X,option,BTC,1769817600,1e400,C\n", kAccounts, kPositions, "field 'strike': not a finite number"},
      {inst + "X,option,BTC,1769817600,12abc,C\n", kAccounts, kPositions, "not a finite number: '12abc'"},
      {inst + std::string(65, 'A') + ",perp,BTC,,,\n", kAccounts, kPositions, "instruments.csv:5: field 'id'"},
      {inst, "account,cash\n1,2\n1,3\n", "account,instrument,quantity,entry_price\n",
       "accounts.csv:3: field 'account': duplicate account 1 (first on line 2)"},
      {inst, "account,cash\n18446744073709551616,1\n", "account,instrument,quantity,entry_price\n",
       "accounts.csv:2: field 'account': not an unsigned 64-bit integer"},
      {inst, "account,cash\n1,\n", "account,instrument,quantity,entry_price\n", "accounts.csv:2: field 'cash': missing value"},
      {inst, kAccounts, std::string(kPositions) + "7,BTC-C,1,\n7,BTC-C,3,\n",
       "positions.csv:6: field 'instrument': duplicate position of account 7 in 'BTC-C' (first on line 5)"},
      {inst, kAccounts, std::string(kPositions) + "7,BTC-PERP,1,-5\n", "positions.csv:5: field 'entry_price': must be in [0, 1e+09]"},
      {inst, kAccounts, std::string(kPositions) + "7,ETH-P,1,abc\n", "positions.csv:5: field 'entry_price': not a finite number"},
      {inst, kAccounts, std::string(kPositions) + "7,BTC-PERP,1,100,9\n", "positions.csv:5: expected 4 fields, got 5"},
      {inst, kAccounts, "account,instrument,qty,entry_price\n", "positions.csv:1: header must be"},
  };
  for (const auto& c : cases) {
    write_book(d, c.inst, c.acc, c.pos);
    const std::string msg = error_of([&] { io::load_book(d.path()); });
    EXPECT_NE(msg.find(c.expect), std::string::npos) << "expected '" << c.expect << "', got: " << msg;
  }
  EXPECT_NE(error_of([&] { io::load_book(d.path() / "nope"); }).find("not a book folder"), std::string::npos);
  fs::remove(d.path() / "positions.csv");
  EXPECT_NE(error_of([&] { io::load_book(d.path()); }).find("positions.csv: cannot open"), std::string::npos);
}

// CsvReader::split, as the positions loader reads in parallel: every cut gives the
// same rows with the same line numbers, and the same first error, as one reader.
namespace {
struct Row {
  std::string a, b;
  std::int64_t line;
  bool operator==(const Row&) const = default;
};
// Reads every run in order; returns the rows, or the first error as a row with line -1.
std::vector<Row> read_runs(const std::string& text, int parts) {
  io::CsvReader r("t.csv", text, {"a", "b"});
  std::vector<Row> out;
  try {
    for (io::CsvReader& run : r.split(parts))
      while (run.next()) out.push_back({std::string(run.field(0)), std::string(run.field(1)), run.line()});
  } catch (const input_error& e) {
    out.push_back({e.what(), "", -1});
  }
  return out;
}
}  // namespace

TEST(CsvSplit, EveryCutReadsTheSameRowsWithTheirLineNumbers) {
  std::string text = "a,b\r\n";
  std::mt19937 rng(5);
  for (int i = 0; i < 500; ++i) text += std::to_string(i) + "," + std::string(rng() % 9, 'x') + (i % 3 ? "\n" : "\r\n");
  text += "\n\r\n";  // trailing blank lines are allowed
  const std::vector<Row> one = read_runs(text, 1);
  ASSERT_EQ(one.size(), 500u);
  EXPECT_EQ(one.back().line, 501);
  for (int parts = 2; parts <= 64; ++parts) EXPECT_EQ(read_runs(text, parts), one) << parts << " parts";
}

TEST(CsvSplit, TheFirstErrorIsTheFilesFirstWhereverTheCutsFall) {
  std::string rows;
  for (int i = 0; i < 300; ++i) rows += std::to_string(i) + ",y\n";
  // A blank line in the middle, then later a row with three fields: the blank line
  // is reported, whether it begins a run, ends one or sits inside one.
  const std::string text = "a,b\n" + rows + "\n" + rows + "1,2,3\n" + rows;
  for (int parts = 1; parts <= 64; ++parts) {
    const std::vector<Row> got = read_runs(text, parts);
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got.back().line, -1) << parts << " parts";
    EXPECT_EQ(got.back().a, "t.csv:302: empty line") << parts << " parts";
  }
  const std::string late = "a,b\n" + rows + rows + "1,2,3\n" + rows;
  for (int parts = 1; parts <= 64; ++parts)
    EXPECT_EQ(read_runs(late, parts).back().a, "t.csv:602: expected 2 fields, got 3") << parts << " parts";
}

TEST(BookCsv, APositionsErrorLateInALargeFileNamesItsLine) {
  // Large enough that the loader's runs (one per thread) cut it; the bad row is in the last.
  TempDir d;
  std::string pos = "account,instrument,quantity,entry_price\n";
  for (int i = 0; i < 20000; ++i) pos += i % 2 ? "7,ETH-P,1,\n" : "18446744073709551615,BTC-C,1,\n";
  const std::string bad = pos + "7,NOPE,1,\n" + pos;
  write_book(d, kInstruments, kAccounts, bad);
  EXPECT_NE(error_of([&] { io::load_book(d.path()); }).find("positions.csv:20002: field 'instrument': unknown instrument 'NOPE'"),
            std::string::npos);
  // And the first duplicate reported is the first account's (index order) with one.
  write_book(d, kInstruments, kAccounts, pos);
  const std::string msg = error_of([&] { io::load_book(d.path()); });
  EXPECT_NE(msg.find("positions.csv:4: field 'instrument': duplicate position of account 18446744073709551615 in 'BTC-C' (first on line 2)"),
            std::string::npos) << msg;
}

// The duplicate check has two ways to list an account's positions: ranges, when the
// file groups positions by account (accounts with none between and at both ends), and
// a counting sort otherwise. Both load the same book and name the same duplicate.
TEST(BookCsv, DuplicatesAreFoundWhetherOrNotPositionsAreGroupedByAccount) {
  TempDir d;
  const std::string accounts = "account,cash\n1,10\n2,20\n3,30\n4,40\n5,50\n";
  const std::string head = "account,instrument,quantity,entry_price\n";
  const std::string grouped = head + "2,BTC-PERP,1,100\n2,BTC-C,2,\n4,ETH-P,3,\n4,BTC-C,4,\n";
  const std::string shuffled = head + "4,ETH-P,3,\n2,BTC-PERP,1,100\n4,BTC-C,4,\n2,BTC-C,2,\n";
  for (const std::string& pos : {grouped, shuffled}) {
    write_book(d, kInstruments, accounts, pos);
    const Book b = io::load_book(d.path());
    ASSERT_EQ(b.position_count(), 4u);
    EXPECT_EQ(std::count(b.pos_account.begin(), b.pos_account.end(), 1), 2);  // account "2" is index 1
    EXPECT_EQ(std::count(b.pos_account.begin(), b.pos_account.end(), 3), 2);
  }
  // Account 4 (index 3) holds BTC-C twice, account 2 ETH-P twice: the lowest account's
  // first pair is named, in file lines.
  const std::string dup_grouped = head + "2,ETH-P,1,\n2,BTC-PERP,1,100\n2,ETH-P,2,\n4,BTC-C,1,\n4,BTC-C,2,\n";
  const std::string dup_shuffled = head + "4,BTC-C,1,\n2,ETH-P,1,\n4,BTC-C,2,\n2,BTC-PERP,1,100\n2,ETH-P,2,\n";
  write_book(d, kInstruments, accounts, dup_grouped);
  EXPECT_EQ(error_of([&] { io::load_book(d.path()); }),
            "positions.csv:4: field 'instrument': duplicate position of account 2 in 'ETH-P' (first on line 2)");
  write_book(d, kInstruments, accounts, dup_shuffled);
  EXPECT_EQ(error_of([&] { io::load_book(d.path()); }),
            "positions.csv:6: field 'instrument': duplicate position of account 2 in 'ETH-P' (first on line 3)");
}

// Files are mapped, not read; an empty file (nothing to map) is read, and named.
TEST(BookCsv, AnEmptyFileIsReportedNotMapped) {
  TempDir d;
  write_book(d, kInstruments, kAccounts, "");
  EXPECT_EQ(error_of([&] { io::load_book(d.path()); }).rfind("positions.csv:1: header must be", 0), 0u);
}

TEST(MarketJson, DefaultsAndPaths) {
  const Market m = io::parse_market(
      R"({"time": 1767225600, "underlyings": {"BTC": {"spot": 97000.0,
          "expiries": [{"expiry": 1769817600, "svi": {"a": 0.02, "b": 0.1, "rho": -0.3, "m": 0.0, "sigma": 0.2}}]}}})",
      "m.json");
  const UnderlyingMarket& b = m.underlyings.at("BTC");
  EXPECT_EQ(b.rate, 0.0);
  EXPECT_EQ(b.confidence, 1.0);
  EXPECT_EQ(b.time, 1767225600.0);
  ASSERT_EQ(b.expiries.size(), 1u);
  EXPECT_EQ(b.expiries[0].svi.rho, -0.3);

  const struct { const char* text; const char* expect; } bad[] = {
      {R"({"underlyings": {}})", "m.json.time: missing"},
      {R"({"time": "now", "underlyings": {}})", "m.json.time: must be a number"},
      {R"({"time": 1, "underlyings": {"BTC": {"spot": 0}}})", "m.json.underlyings.BTC.spot: 0 is outside [1e-08, 1e+09]"},
      {R"({"time": 1, "underlyings": {"BTC": {"spot": 1, "confidence": 2}}})", "underlyings.BTC.confidence: 2 is outside [0, 1]"},
      {R"({"time": 1, "underlyings": {"BTC": {"spot": 1, "expiries": [{"expiry": 5}]}}})", "underlyings.BTC.expiries[0].svi: missing"},
      {R"({"time": 1, "underlyings": {"BTC": {"spot": 1, "expiries": [{"expiry": 5, "svi": {"a": 1, "b": -1, "rho": 0, "m": 0, "sigma": 1}}]}}})",
       "underlyings.BTC.expiries[0].svi.b"},
      {R"({"time": 1, "underlyings": {"BTC": {"spot": 1, "sopt": 2}}})", "underlyings.BTC.sopt: unknown field"},
      {R"({"time": 1, "underlyings": {"B.C": {"spot": 1}}})", "underlyings.B.C: underlying name"},
      {"{\"time\": 1,\n \"underlyings\": {\"BTC\": {\"spot\": NaN}}}", "m.json:2:"},
  };
  for (const auto& c : bad) {
    const std::string msg = error_of([&] { io::parse_market(c.text, "m.json"); });
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.text << " -> " << msg;
  }
}

TEST(MarketJson, WritesWhatItReads) {
  Market m;
  m.time = 1767225600;
  m.underlyings["ETH"] = UnderlyingMarket{3412.0625, -0.0125, 0.5, m.time, {{1769817600, {0.1 / 3, 0.2, -0.25, 0.01, 0.3}}}};
  const Market back = io::parse_market(io::market_to_json(m), "roundtrip");
  const auto& a = m.underlyings.at("ETH");
  const auto& b = back.underlyings.at("ETH");
  EXPECT_EQ(a.spot, b.spot);
  EXPECT_EQ(a.rate, b.rate);
  EXPECT_EQ(a.confidence, b.confidence);
  EXPECT_EQ(a.expiries[0].svi.a, b.expiries[0].svi.a);  // shortest form still round-trips exactly
}

TEST(MethodologyJson, EmptyConfigIsTheSpecDefault) {
  const Methodology m = io::parse_methodology("{}", "c.json");
  ASSERT_EQ(m.base.scenarios.size(), 31u);
  EXPECT_EQ(m.base.scenarios[0].spot, 0.865);
  EXPECT_EQ(m.base.scenarios[0].vol, VolMode::up);
  EXPECT_EQ(m.base.scenarios[2].vol, VolMode::down);
  EXPECT_EQ(m.base.scenarios[21].spot, 0.82);
  EXPECT_EQ(m.base.scenarios[22].spot, 1.18);
  EXPECT_EQ(m.base.scenarios[30].spot, 6.0);
  EXPECT_EQ(m.base.scenarios[30].damp, 0.02772);
  EXPECT_EQ(m.base.vol_shock.p_short, 0.3);
  EXPECT_EQ(m.base.mm_scan, 0.8);
  // default-config prints a file that parses back to the same methodology.
  const Methodology again = io::parse_methodology(io::methodology_to_json(m), "printed");
  ASSERT_EQ(again.base.scenarios.size(), 31u);
  for (std::size_t j = 0; j < 31; ++j) {
    EXPECT_EQ(again.base.scenarios[j].spot, m.base.scenarios[j].spot);
    EXPECT_EQ(again.base.scenarios[j].vol, m.base.scenarios[j].vol);
    EXPECT_EQ(again.base.scenarios[j].damp, m.base.scenarios[j].damp);
  }
}

TEST(MethodologyJson, OverridesLayerOnTheGlobalBlock) {
  const Methodology m = io::parse_methodology(
      R"({"contingency": {"mm_perp": 0.05}, "underlyings": {"SOL": {"scenarios": [{"spot": 0.7, "vol": "up"}], "im_scan": 1.5}}})",
      "c.json");
  EXPECT_EQ(m.base.mm_perp, 0.05);
  const UnderlyingMethodology& sol = m.for_underlying("SOL");
  EXPECT_EQ(sol.mm_perp, 0.05);  // inherits the global override
  EXPECT_EQ(sol.im_scan, 1.5);
  ASSERT_EQ(sol.scenarios.size(), 1u);
  EXPECT_EQ(sol.scenarios[0].damp, 1.0);  // damp defaults to 1
  EXPECT_EQ(&m.for_underlying("BTC"), &m.base);
}

TEST(NumberFormat, ShortestFormRoundTripsAndHasNoNegativeZero) {
  std::mt19937_64 rng(3);
  for (int k = 0; k < 100000; ++k) {
    std::uint64_t bits = rng();
    double x;
    std::memcpy(&x, &bits, sizeof x);
    if (!std::isfinite(x)) continue;
    std::string s;
    io::append_number(s, x);
    double y = 0;
    std::from_chars(s.data(), s.data() + s.size(), y);
    ASSERT_EQ(x == 0 ? 0.0 : x, y) << s;
  }
  std::string s;
  io::append_number(s, -0.0);
  EXPECT_EQ(s, "0");
}

TEST(GenBook, DeterministicAndLoadable) {
  TempDir a, b;
  io::GenBookOptions opt;
  opt.accounts = 2000;
  opt.underlyings = 5;
  opt.seed = 77;
  const auto sa = io::gen_book(opt, a.path());
  io::gen_book(opt, b.path());
  for (const char* f : {"instruments.csv", "accounts.csv", "positions.csv", "market.json"})
    EXPECT_EQ(io::read_file(a.path() / f), io::read_file(b.path() / f)) << f;
  const Book book = io::load_book(a.path());
  EXPECT_EQ(book.account_count(), 2000u);
  EXPECT_EQ(book.position_count(), sa.positions);
  EXPECT_EQ(book.instrument_count(), sa.instruments);
  EXPECT_EQ(book.underlyings.size(), 5u);
  const Market m = io::load_market(a.path() / "market.json");
  EXPECT_EQ(m.underlyings.size(), 5u);
  io::GenBookOptions bad = opt;
  bad.underlyings = 11;
  EXPECT_THROW(io::gen_book(bad, a.path() / "x"), input_error);
}

TEST(BookCsv, AFormattedBookLoadsBackExactly) {
  TempDir d;
  write_book(d);
  const Book b = io::load_book(d.path());
  const io::BookFiles f = io::format_book(b);
  TempDir e;
  e.write("instruments.csv", f.instruments);
  e.write("accounts.csv", f.accounts);
  e.write("positions.csv", f.positions);
  const Book c = io::load_book(e.path());
  EXPECT_EQ(c.instrument_id, b.instrument_id);
  EXPECT_EQ(c.underlyings, b.underlyings);
  EXPECT_EQ(c.strike, b.strike);
  EXPECT_EQ(c.expiry, b.expiry);
  EXPECT_EQ(c.account_id, b.account_id);
  EXPECT_EQ(c.cash, b.cash);
  EXPECT_EQ(c.pos_quantity, b.pos_quantity);
  EXPECT_EQ(c.pos_entry, b.pos_entry);
}
