// Shared by the batch commands: logging, --help detection and the inputs they all load.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/args.hpp"
#include "kernels/book.hpp"
#include "kernels/engine.hpp"
#include "kernels/market.hpp"

namespace vaultrisk::cli {

using Clock = std::chrono::steady_clock;

// Log lines on stderr with the time since the command started; --quiet drops them.
struct Log {
  bool quiet = false;
  Clock::time_point start = Clock::now();
  template <class... T>
  void operator()(const char* fmt, T... args) const {
    if (quiet) return;
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    std::fprintf(stderr, "[vaultrisk %8.1f ms] ", ms);
    std::fprintf(stderr, fmt, args...);
    std::fputc('\n', stderr);
  }
};

inline double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

inline bool wants_help(const std::vector<std::string>& args) {
  for (const auto& a : args)
    if (a == "--help" || a == "-h") return true;
  return false;
}

struct Loaded {
  Book book;
  Market market;
};
// --book and --market, loaded and logged.
Loaded load_inputs(const Args& args, const Log& log);
// --device, checked against what this build and host have.
Device device_arg(const Args& args);

}  // namespace vaultrisk::cli
