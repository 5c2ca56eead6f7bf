#!/usr/bin/env python3
"""Whole-process tests of `vaultrisk stress` (SPEC §8).

    test_stress.py VAULTRISK NUMPY_STRESS

- named scenarios against `vaultrisk revalue` of each shocked market, built here;
- historical simulation (plain and filtered) against the independent numpy
  implementation bench/numpy_stress.py;
- Monte Carlo: the same seed gives the same bytes, another seed other bytes;
- bad input: an error naming the file and field, and nothing written;
- report.html rendered by headless Chromium: charts drawn, no console errors;
- --workers: two stress-worker processes on a real nats-server (JetStream), one
  killed with -9 mid-group: the merged result is byte-identical to one process.
The book is random (seed printed; VR_TEST_SEED replays it).
"""
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from cli_helpers import close, rows, runner  # noqa: E402

VAULTRISK, NUMPY_STRESS = sys.argv[1], sys.argv[2]
SEED = int(os.environ.get("VR_TEST_SEED", random.SystemRandom().randrange(1, 2**31)))
YEAR, DAY = 31536000.0, 86400
T0 = 1_790_000_000
VOLS = {"BTC": 0.6, "ETH": 0.75, "SOL": 0.9}


run = runner(VAULTRISK)


def slurp(path):
    with open(path, "rb") as fh:
        return fh.read()


def make_book(d, rng, unds=("BTC", "ETH", "SOL")):
    """Perps and options on flat smiles (b = 0): each expiry has one vol, so a
    shocked market with vols σ + dv is again an SVI market that revalue reads."""
    spots = {"BTC": 60000.0, "ETH": 3000.0, "SOL": 150.0}
    expiries = [T0 - DAY, T0 + DAY // 2, T0 + 5 * DAY, T0 + 40 * DAY]
    inst, market = [], {"time": T0, "underlyings": {}}
    for u in unds:
        inst.append((f"{u}-PERP", "perp", u, "", "", ""))
        slices = []
        for k, e in enumerate(expiries):
            for m in (0.8, 1.0, 1.25):
                for t in "CP":
                    inst.append((f"{u}-{k}-{m}-{t}", "option", u, e, round(spots[u] * m, 2), t))
            if e > T0:
                vol = VOLS[u] * (1 + 0.1 * k)
                slices.append({"expiry": e, "svi": {"a": vol * vol * (e - T0) / YEAR, "b": 0, "rho": 0, "m": 0, "sigma": 0.1}})
        market["underlyings"][u] = {"spot": spots[u], "rate": 0.03, "confidence": 1, "expiries": slices}
    os.makedirs(d)
    with open(os.path.join(d, "instruments.csv"), "w") as fh:
        fh.write("id,kind,underlying,expiry,strike,type\n")
        fh.writelines(",".join(map(str, i)) + "\n" for i in inst)
    accounts = list(range(1, 61))
    with open(os.path.join(d, "accounts.csv"), "w") as fh:
        fh.write("account,cash\n")
        fh.writelines(f"{a},{rng.uniform(-2000, 60000):.2f}\n" for a in accounts)
    with open(os.path.join(d, "positions.csv"), "w") as fh:
        fh.write("account,instrument,quantity,entry_price\n")
        for a in accounts:
            for i in rng.sample(inst, rng.randint(1, 6)):
                q = round(rng.uniform(-3, 3), 3) or 1.0
                entry = round(spots[i[2]] * rng.uniform(0.9, 1.1), 2) if i[1] == "perp" else ""
                fh.write(f"{a},{i[0]},{q},{entry}\n")
    with open(os.path.join(d, "market.json"), "w") as fh:
        json.dump(market, fh)
    return market


def shocked_market(market, shocks, horizon_days):
    m = json.loads(json.dumps(market))
    m["time"] = T0 + horizon_days * DAY
    for u, um in m["underlyings"].items():
        s, dv = shocks.get(u, {}).get("spot", 1.0), shocks.get(u, {}).get("vol", 0.0)
        um["spot"] *= s
        slices = []
        for e in um["expiries"]:
            vol = math.sqrt(e["svi"]["a"] / ((e["expiry"] - T0) / YEAR))
            t2 = (e["expiry"] - m["time"]) / YEAR
            if t2 > 0:
                slices.append({"expiry": e["expiry"], "svi": {"a": max(0.0, vol + dv) ** 2 * t2, "b": 0, "rho": 0, "m": 0, "sigma": 0.1}})
        um["expiries"] = slices
    return m


def write_history(path, rng, unds, dates=30, drop=None):
    spot = {"BTC": 60000.0, "ETH": 3000.0, "SOL": 150.0, "XRP": 0.5}
    vol = {u: 0.6 for u in spot}
    with open(path, "w") as fh:
        fh.write("date,underlying,spot,atm_vol\n")
        for k in range(dates):
            date = f"2026-{1 + k // 28:02d}-{1 + k % 28:02d}"
            for u in (*unds, "XRP"):  # XRP is not in the book: ignored
                spot[u] *= math.exp(rng.gauss(0, 0.03))
                vol[u] = max(0.2, vol[u] + rng.gauss(0, 0.02))
                if drop != (date, u):
                    fh.write(f"{date},{u},{spot[u]:.6f},{vol[u]:.6f}\n")


class Stress(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        print(f"test_stress.py seed {SEED}", file=sys.stderr)
        cls.rng = random.Random(SEED)
        cls.tmp = tempfile.mkdtemp(prefix="vr-stress-")
        cls.book = os.path.join(cls.tmp, "book")
        cls.market = make_book(cls.book, cls.rng)
        cls.market_file = os.path.join(cls.book, "market.json")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def path(self, *p):
        return os.path.join(self.tmp, *p)

    def stress(self, out, *args, check=True):
        return run("stress", "--book", self.book, "--market", self.market_file, "--out", self.path(out), "--quiet", *args,
                   check=check)

    def test_named_scenarios_match_revalue_of_each_shocked_market(self):
        scenarios = {"horizon_days": 1, "scenarios": [
            {"name": "crash", "shocks": {"BTC": {"spot": 0.7, "vol": 0.25}, "ETH": {"spot": 0.6}}},
            {"name": "calm", "shocks": {"BTC": {"vol": -0.2}, "SOL": {"spot": 1.05, "vol": -0.1}}},
            {"name": "rally", "shocks": {"BTC": {"spot": 1.3}, "ETH": {"spot": 1.4, "vol": 0.1}, "SOL": {"spot": 1.6}}},
            {"name": "none"}]}
        f = self.path("named.json")
        with open(f, "w") as fh:
            json.dump(scenarios, fh)
        self.stress("named", "--scenarios", f)
        run("revalue", "--book", self.book, "--market", self.market_file, "--out", self.path("today"), "--quiet")
        today = {r["account"]: r for r in rows(self.path("today", "accounts.csv"))}
        acc = rows(self.path("named", "accounts.csv"))
        scen = rows(self.path("named", "scenarios.csv"))
        for i, s in enumerate(scenarios["scenarios"]):
            m = self.path(f"shocked-{s['name']}.json")
            with open(m, "w") as fh:
                json.dump(shocked_market(self.market, s.get("shocks", {}), 1), fh)
            out = self.path(f"revalued-{s['name']}")
            run("revalue", "--book", self.book, "--market", m, "--out", out, "--quiet")
            shocked = {r["account"]: r for r in rows(os.path.join(out, "accounts.csv"))}
            liquidatable = 0
            col = f"pnl_{s['name']}"
            for r in acc:
                want = float(shocked[r["account"]]["equity"]) - float(today[r["account"]]["equity"])
                self.assertTrue(abs(float(r[col]) - want) <= 1e-9 * (1 + abs(float(today[r["account"]]["equity"]))),
                                f"{col} account {r['account']}: {r[col]} vs {want}")
                self.assertEqual(r[f"status_{s['name']}"], shocked[r["account"]]["status"], f"{s['name']} account {r['account']}")
                liquidatable += shocked[r["account"]]["status"] == "liquidatable"
            self.assertEqual(int(scen[i]["liquidatable_accounts"]), liquidatable)
            self.assertEqual(scen[i]["name"], s["name"])

    def check_against_numpy(self, name, *extra):
        hist = self.path(f"{name}.csv")
        write_history(hist, random.Random(SEED + 1), ("BTC", "ETH", "SOL"))
        self.stress(name, "--history", hist, "--horizon-days", 2, "--confidence", 0.9, *extra)
        ref = self.path(f"{name}-numpy")
        subprocess.run([sys.executable, NUMPY_STRESS, "--book", self.book, "--market", self.market_file, "--out", ref,
                        "--history", hist, "--horizon-days", "2", "--confidence", "0.9", *extra], check=True)
        ours, theirs = rows(self.path(name, "scenarios.csv")), rows(os.path.join(ref, "scenarios.csv"))
        self.assertEqual(len(ours), 28)
        for a, b in zip(ours, theirs):
            self.assertEqual(a["name"], b["name"])
            for k in ("vault_pnl", "bad_debt"):
                self.assertTrue(close(a[k], b[k]), f"{name} {a['name']} {k}: {a[k]} vs {b[k]}")
            self.assertEqual(a["insolvent_accounts"], b["insolvent_accounts"], a["name"])
        for a, b in zip(rows(self.path(name, "accounts.csv")), rows(os.path.join(ref, "accounts.csv"))):
            self.assertEqual(a["account"], b["account"])
            for k in ("equity", "var", "es", "worst_pnl"):
                self.assertTrue(close(a[k], b[k]), f"{name} account {a['account']} {k}: {a[k]} vs {b[k]}")
            self.assertEqual((a["worst_scenario"], a["insolvent_scenarios"]), (b["worst_scenario"], b["insolvent_scenarios"]))

    def test_history_matches_numpy(self):
        self.check_against_numpy("history")

    def test_filtered_history_matches_numpy(self):
        self.check_against_numpy("filtered", "--filtered")

    def test_monte_carlo_same_seed_same_bytes(self):
        for name, seed in (("mc-a", 7), ("mc-b", 7), ("mc-c", 8)):
            self.stress(name, "--monte-carlo", 2000, "--horizon-days", 1, "--seed", seed)
        for f in ("scenarios.csv", "accounts.csv"):
            a, b, c = (slurp(self.path(n, f)) for n in ("mc-a", "mc-b", "mc-c"))
            self.assertEqual(a, b, f)
            self.assertNotEqual(a, c, f)
        summary = json.loads(slurp(self.path("mc-a", "summary.json")))
        self.assertEqual(summary["scenarios"], 2000)
        self.assertEqual(set(summary["contributions"]), {"BTC", "ETH", "SOL"})
        self.assertAlmostEqual(sum(summary["contributions"].values()), summary["vault"]["es"],
                               delta=1e-9 * abs(summary["vault"]["es"]))
        # VaR and ES are the order statistics of scenarios.csv (m = 20 of 2000 at 99%).
        losses = sorted((-float(r["vault_pnl"]) for r in rows(self.path("mc-a", "scenarios.csv"))), reverse=True)
        self.assertEqual(summary["vault"]["var"], losses[19])
        self.assertTrue(close(summary["vault"]["es"], sum(losses[:20]) / 20))

    def test_bad_input_names_the_place_and_writes_nothing(self):
        def bad(name, content, args, pattern):
            if content is not None:
                with open(self.path(name), "w") as fh:
                    fh.write(content)
            out = f"bad-{name}"
            p = self.stress(out, *[self.path(name) if a == "@" else a for a in args], check=False)
            self.assertEqual(p.returncode, 1, f"{name}: {p.stderr}")
            self.assertRegex(p.stderr, pattern, name)
            self.assertFalse(os.path.exists(self.path(out)), f"{name}: something was written")

        bad("nonpd.json", json.dumps({"correlation": {"BTC/ETH": 0.9, "BTC/SOL": 0.9, "ETH/SOL": -0.9}}),
            ["--monte-carlo", 10, "--horizon-days", 1, "--seed", 1, "--model", "@"], r"nonpd\.json: correlation: .*not positive definite")
        bad("unknown.json", json.dumps({"scenarios": [{"name": "x", "shocks": {"DOGE": {"spot": 0.5}}}]}),
            ["--scenarios", "@"], r"unknown\.json: scenarios\[0\]\.shocks\.DOGE: 'DOGE' is not an underlying of the book")
        bad("unknown-model.json", json.dumps({"vol": {"DOGE": 0.5}}),
            ["--monte-carlo", 10, "--horizon-days", 1, "--seed", 1, "--model", "@"], r"unknown-model\.json: vol\.DOGE")
        write_history(self.path("gap.csv"), random.Random(1), ("BTC", "ETH", "SOL"), drop=("2026-01-05", "ETH"))
        bad("gap.csv", None, ["--history", "@", "--horizon-days", 1], r"gap\.csv: date 2026-01-05 has no row for underlying ETH")
        write_history(self.path("no-sol.csv"), random.Random(1), ("BTC", "ETH"))
        bad("no-sol.csv", None, ["--history", "@", "--horizon-days", 1], r"no-sol\.csv: date 2026-01-01 has no row for underlying SOL")
        write_history(self.path("short.csv"), random.Random(1), ("BTC", "ETH", "SOL"), dates=5)
        bad("short.csv", None, ["--history", "@", "--horizon-days", 5], r"short\.csv: 5 dates cannot give a 5-row horizon")
        bad("badline.csv", "date,underlying,spot,atm_vol\n2026-01-01,BTC,-3,0.5\n", ["--history", "@", "--horizon-days", 1],
            r"badline\.csv:2: field 'spot'")
        bad("n0", None, ["--monte-carlo", 0, "--horizon-days", 1, "--seed", 1], r"--monte-carlo: the number of paths")
        for a in ("0", "1", "1.5", "-0.2"):
            bad(f"conf{a}", None, ["--monte-carlo", 10, "--horizon-days", 1, "--seed", 1, "--confidence", a],
                r"--confidence: .* is outside \(0, 1\)")
        bad("spot.json", json.dumps({"scenarios": [{"name": "x", "shocks": {"BTC": {"spot": -1}}}]}), ["--scenarios", "@"],
            r"spot\.json: scenarios\[0\]\.shocks\.BTC\.spot: -1 is outside \(0, 100\]")

    def test_report_renders_in_headless_chromium(self):
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if not chromium:
            self.skipTest("chromium is not installed (scripts/lib.sh installs it)")
        f = self.path("named-r.json")
        with open(f, "w") as fh:
            json.dump({"horizon_days": 1, "scenarios": [{"name": "crash", "shocks": {"BTC": {"spot": 0.6}}},
                                                        {"name": "up", "shocks": {"ETH": {"spot": 1.3}}}]}, fh)
        self.stress("report", "--scenarios", f)
        html = self.path("report", "report.html")
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={self.path('chromium-profile')}", "--enable-logging=stderr", "--v=0"]
        dom = subprocess.run([chromium, *flags, "--dump-dom", "file://" + html], capture_output=True, text=True, timeout=120)
        self.assertEqual(dom.returncode, 0, dom.stderr[-2000:])
        for chart in ("pnl-histogram", "bad-debt-histogram", "worst-accounts", "contributions", "migration"):
            start = dom.stdout.find(f'<svg id="{chart}"')
            self.assertGreaterEqual(start, 0, f"chart {chart} missing from the rendered DOM")
            body = dom.stdout[start:dom.stdout.find("</svg>", start)]
            self.assertGreater(body.count("<rect"), 1, f"chart {chart} drew no bars")
        self.assertNotRegex(dom.stderr, r"CONSOLE.*(error|Uncaught)|Uncaught", "console errors")
        png = self.path("report.png")
        shot = subprocess.run([chromium, *flags, "--window-size=900,2600", f"--screenshot={png}", "file://" + html],
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(shot.returncode, 0, shot.stderr[-2000:])
        with open(png, "rb") as fh:
            data = fh.read()
        self.assertEqual(data[:8], b"\x89PNG\r\n\x1a\n")
        self.assertGreater(len(data), 20000, "the screenshot is (nearly) blank")
        if os.environ.get("VR_REPORT_PNG"):
            shutil.copy(png, os.environ["VR_REPORT_PNG"])


class Workers(unittest.TestCase):
    def test_two_workers_one_killed_mid_group_give_the_single_process_bytes(self):
        tmp = tempfile.mkdtemp(prefix="vr-workers-")
        procs = []
        try:
            nats = subprocess.Popen([shutil.which("nats-server", path="/usr/sbin:/usr/bin") or "nats-server", "-js", "-a",
                                     "127.0.0.1", "-p", "-1", "-sd", os.path.join(tmp, "js")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            procs.append(nats)
            port = None
            for line in nats.stderr:
                m = re.search(r"Listening for client connections on [\d.]+:(\d+)", line)
                if m:
                    port = m.group(1)
                    break
            url = f"nats://127.0.0.1:{port}"
            book = os.path.join(tmp, "book")
            run("gen-book", "--accounts", 20000, "--underlyings", 2, "--seed", 3, "--out", book, "--quiet")
            args = ["stress", "--book", book, "--market", os.path.join(book, "market.json"), "--monte-carlo", 4000,
                    "--horizon-days", 1, "--seed", 4, "--quiet"]
            run(*args, "--out", os.path.join(tmp, "single"))

            def worker(name):
                with open(os.path.join(tmp, name + ".log"), "w") as log:
                    p = subprocess.Popen([VAULTRISK, "stress-worker", "--nats", url, "--ack-wait", "2"], stdout=log,
                                         stderr=subprocess.STDOUT)
                procs.append(p)
                return p

            a = worker("a")
            time.sleep(0.5)
            coord = subprocess.Popen([VAULTRISK, *map(str, args), "--out", os.path.join(tmp, "dist"), "--workers", url,
                                      "--timeout", "240"], stderr=subprocess.PIPE, text=True)
            procs.append(coord)
            # Worker a takes the first group; kill it -9 while it works on it.
            deadline = time.time() + 60
            killed = None
            while time.time() < deadline and killed is None:
                m = re.search(r"group (\d+): accounts", slurp(os.path.join(tmp, "a.log")).decode())
                if m:
                    a.kill()
                    killed = m.group(1)
                time.sleep(0.02)
            self.assertIsNotNone(killed, "worker a never started a group")
            b = worker("b")
            _, err = coord.communicate(timeout=240)
            self.assertEqual(coord.returncode, 0, err)
            log_b = slurp(os.path.join(tmp, "b.log")).decode()
            self.assertIn(f"group {killed}: accounts", log_b, "the killed worker's group was redelivered to b")
            for f in ("scenarios.csv", "accounts.csv"):
                self.assertEqual(slurp(os.path.join(tmp, "dist", f)), slurp(os.path.join(tmp, "single", f)), f)
            b.terminate()
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
