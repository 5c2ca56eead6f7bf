#!/usr/bin/env python3
"""Runs the benchmarks and their comparators in one go; writes bench/RESULTS.md.

    bench/run [--max-accounts 1000000] [--repeats 3]

Engine figures come from Google Benchmark (bench/bench_engine.cpp); the numpy
comparator is bench/numpy_revalue.py on the same generated books; QuantLib runs
inside the same benchmark binary. Ratios are taken within this one run.
"""
import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build", "bench")
VR = os.path.join(BUILD, "cli", "vaultrisk")
WORK = os.path.join(ROOT, "bench", "out")


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def machine():
    model = "unknown CPU"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = int(open("/proc/meminfo").readline().split()[1]) / 1024 / 1024
    return f"{model}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, {platform.system()} {platform.release()}"


def wall(cmd, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def cli_phases(book, out):
    """Layout + revaluation milliseconds as vaultrisk logs them (same scope as numpy's compute)."""
    p = sh(VR, "revalue", "--book", book, "--market", os.path.join(book, "market.json"), "--out", out, "--device", "cpu")
    layout = float(re.search(r"layout \d+ blocks \(([\d.]+) ms\)", p.stderr).group(1))
    reval = float(re.search(r"revalued \d+ accounts \(([\d.]+) ms\)", p.stderr).group(1))
    return layout + reval


def numpy_compute(book, out):
    p = sh(sys.executable, os.path.join(ROOT, "bench", "numpy_revalue.py"), "--book", book,
           "--market", os.path.join(book, "market.json"), "--out", out, "--timing")
    return 1000 * float(re.search(r"compute ([\d.]+) s", p.stderr).group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-accounts", type=int, default=1000000)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    os.makedirs(WORK, exist_ok=True)
    sizes = [n for n in (10000, 100000, 1000000) if n <= a.max_accounts]

    print("building benchmarks ...", file=sys.stderr)
    sh("cmake", "-S", ROOT, "-B", BUILD, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release", "-DVR_BUILD_TESTS=OFF",
       "-DVR_BUILD_BENCH=ON")
    sh("cmake", "--build", BUILD, "--target", "vr_bench", "vaultrisk")

    print("engine and QuantLib benchmarks ...", file=sys.stderr)
    flt = "ScenarioTable|Incremental|FullRevalue/(" + "|".join(map(str, sizes)) + ")/"
    gb_json = os.path.join(WORK, "gbench.json")
    sh(os.path.join(BUILD, "bench", "vr_bench"), f"--benchmark_filter={flt}", f"--benchmark_out={gb_json}",
       "--benchmark_out_format=json", "--benchmark_min_time=1")
    bench = {b["name"]: b for b in json.load(open(gb_json))["benchmarks"]}
    ms = lambda name: bench[name]["real_time"] if bench[name]["time_unit"] == "ms" else bench[name]["real_time"] / 1e6

    # The per-core pricing pair is noisy on a shared machine: repeat, quote medians and the range.
    pg_json = os.path.join(WORK, "gbench-pricing.json")
    sh(os.path.join(BUILD, "bench", "vr_bench"), "--benchmark_filter=Pricing|QuantLib", "--benchmark_repetitions=7",
       f"--benchmark_out={pg_json}", "--benchmark_out_format=json")
    runs = {}
    for b in json.load(open(pg_json))["benchmarks"]:
        if b.get("run_type") == "iteration":
            runs.setdefault(b["run_name"], []).append(b["items_per_second"])
    ql_name = max((k for k in runs if k.startswith("BM_QuantLib")), key=lambda k: statistics.median(runs[k]))
    ql_runs = runs[ql_name]
    ql_pg = statistics.median(ql_runs)
    rows = []
    one_lane = statistics.median(runs["BM_Pricing_PriceGreeks_1core/100000"])
    rows.append(("Price + 5 Greeks, 1 core, one lane (libm; median of 7)", f"{one_lane / 1e6:.1f} M options/s",
                 "QuantLib, as below", f"{one_lane / ql_pg:.0f}x", "", None))
    ours_runs = runs["BM_Pricing_PriceGreeksLanes_1core/100000"]
    ours_pg = statistics.median(ours_runs)
    rows.append(("Price + 5 Greeks, 1 core, four lanes (SLEEF exp/log, our erfc; median of 7)", f"{ours_pg / 1e6:.1f} M options/s",
                 f"QuantLib AnalyticEuropeanEngine, objects reused, quotes updated: {ql_pg / 1e3:.0f} k/s "
                 f"(runs {min(ql_runs) / 1e3:.0f}-{max(ql_runs) / 1e3:.0f} k/s; {ql_name.split('/')[-1]} instruments)",
                 f"{ours_pg / ql_pg:.0f}x ({min(ours_runs) / max(ql_runs):.0f}-{max(ours_runs) / min(ql_runs):.0f}x)",
                 ">= 50x", ours_pg / ql_pg >= 50))
    for n in (100000, 1000000):
        key = f"BM_Engine_ScenarioTable/{n}/real_time"
        if key in bench:
            b = bench[key]
            rows.append((f"Scenario table ({b['instruments']:.0f} instruments x 32 valuations)",
                         f"{ms(key):.1f} ms", f"{b['items_per_second'] / 1e6:.0f} M valuations/s", "", "", None))

    print("numpy comparisons ...", file=sys.stderr)
    for n in sizes:
        book = os.path.join(WORK, f"book-{n}")
        if not os.path.exists(os.path.join(book, "market.json")):
            sh(VR, "gen-book", "--accounts", str(n), "--out", book, "--quiet")
        key = f"BM_Engine_FullRevalue/{n}/real_time"
        full = ms(key)
        ours_c = statistics.median(cli_phases(book, os.path.join(WORK, f"v-{n}")) for _ in range(a.repeats))
        reps = a.repeats if n < 1000000 else 1
        np_c = statistics.median(numpy_compute(book, os.path.join(WORK, f"n-{n}")) for _ in range(reps))
        positions = bench[key]["positions"]
        target = "<= 100 ms" if n == 100000 else ""
        rows.append((f"Full revaluation, {n:,} accounts / {positions / 1e6:.1f} M positions (resident)",
                     f"{full:.1f} ms", f"numpy compute {np_c:.0f} ms (ours incl. layout {ours_c:.0f} ms)",
                     f"{np_c / ours_c:.0f}x", target, (full <= 100) if target else None))
        inc = f"BM_Engine_IncrementalOneUnderlying/{n}/real_time"
        if inc in bench:
            rows.append((f"Incremental, 1 of 3 underlyings, {n:,} accounts", f"{ms(inc):.1f} ms",
                         f"full revaluation {full:.1f} ms", f"{full / ms(inc):.1f}x", "", None))

    print("whole processes ...", file=sys.stderr)
    book = os.path.join(WORK, "book-100000")
    ours_w, _ = wall([VR, "revalue", "--book", book, "--market", os.path.join(book, "market.json"), "--out",
                      os.path.join(WORK, "w-v"), "--device", "cpu", "--quiet"], a.repeats)
    np_w, _ = wall([sys.executable, os.path.join(ROOT, "bench", "numpy_revalue.py"), "--book", book, "--market",
                    os.path.join(book, "market.json"), "--out", os.path.join(WORK, "w-n")], a.repeats)
    rows.append(("Whole `revalue` process, 100,000 accounts (load, compute, write CSVs)", f"{ours_w:.2f} s",
                 f"numpy + pandas process {np_w:.2f} s", f"{np_w / ours_w:.1f}x", ">= 10x", np_w / ours_w >= 10))

    commit = sh("git", "-C", ROOT, "rev-parse", "--short", "HEAD").stdout.strip()
    dirty = sh("git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no").stdout.strip()
    today = datetime.date.today().isoformat()
    out = [f"## CPU run — {today}, commit `{commit}`{' (with local changes)' if dirty else ''}", "",
           f"Machine: {machine()}.  Threads: OpenMP default ({os.cpu_count()}).", "",
           "| benchmark | vaultrisk | comparator (same run) | ratio | target | met |",
           "|---|---|---|---|---|---|"]
    for name, ours, comp, ratio, target, met in rows:
        out.append(f"| {name} | {ours} | {comp} | {ratio} | {target} | {'' if met is None else ('yes' if met else 'no')} |")
    section = "\n".join(out) + "\n"
    print(section)
    path = os.path.join(ROOT, "bench", "RESULTS.md")
    with open(os.path.join(WORK, "cpu-section.md"), "w") as fh:
        fh.write(section)
    print(f"section saved to {WORK}/cpu-section.md; paste it into {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
