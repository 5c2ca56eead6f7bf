#!/usr/bin/env python3
"""Whole-process tests of the vaultrisk CLI.

    test_cli.py VAULTRISK NUMPY_REVALUE

Books come from fresh random seeds (printed, so a failure can be replayed with
VR_TEST_SEED=...) and are checked against the independent numpy implementation.
"""
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import unittest

from cli_helpers import close, rows, runner  # noqa: E402

VAULTRISK, NUMPY = sys.argv[1], sys.argv[2]
SEED = int(os.environ.get("VR_TEST_SEED", random.SystemRandom().randrange(1, 2**31)))


run = runner(VAULTRISK)


def slurp(path):
    with open(path) as fh:
        return fh.read()


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="vr-cli-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, *p):
        return os.path.join(self.tmp, *p)


class GenBook(Base):
    def test_same_seed_same_bytes_other_seed_other_bytes(self):
        for name, seed in (("a", 5), ("b", 5), ("c", 6)):
            run("gen-book", "--accounts", 3000, "--underlyings", 4, "--seed", seed, "--out", self.path(name), "--quiet")
        for f in ("instruments.csv", "accounts.csv", "positions.csv", "market.json"):
            with open(self.path("a", f), "rb") as x, open(self.path("b", f), "rb") as y:
                self.assertEqual(x.read(), y.read(), f)
        with open(self.path("a", "positions.csv"), "rb") as x, open(self.path("c", "positions.csv"), "rb") as y:
            self.assertNotEqual(x.read(), y.read())

    def test_sizes_and_mix_of_statuses(self):
        run("gen-book", "--accounts", 5000, "--out", self.path("g"), "--quiet")
        self.assertEqual(len(rows(self.path("g", "accounts.csv"))), 5000)
        n_pos = len(rows(self.path("g", "positions.csv")))
        self.assertTrue(40000 < n_pos < 60000, n_pos)  # ~10 per account
        run("revalue", "--book", self.path("g"), "--market", self.path("g", "market.json"), "--out", self.path("r"), "--quiet")
        statuses = {r["status"] for r in rows(self.path("r", "accounts.csv"))}
        self.assertEqual(statuses, {"healthy", "margin_call", "liquidatable"})


class AgainstNumpy(Base):
    def test_revalue_matches_independent_numpy_implementation(self):
        rng = random.Random(SEED)
        print(f"\n  seed {SEED}", file=sys.stderr)
        for k in range(3):
            seed, unds, n = rng.randrange(1, 10**9), rng.randint(1, 10), rng.randint(500, 4000)
            book, out_v, out_n = self.path(f"b{k}"), self.path(f"v{k}"), self.path(f"n{k}")
            run("gen-book", "--accounts", n, "--underlyings", unds, "--seed", seed, "--out", book, "--quiet")
            run("revalue", "--book", book, "--market", os.path.join(book, "market.json"), "--out", out_v, "--device", "cpu", "--quiet")
            pnl_file = self.path(f"pnl{k}.npy")
            subprocess.run([sys.executable, NUMPY, "--book", book, "--market", os.path.join(book, "market.json"),
                            "--out", out_n, "--pnl-out", pnl_file], check=True)
            import numpy
            pnl = numpy.load(pnl_file)
            for f in ("accounts.csv", "account_underlyings.csv"):
                ours, theirs = rows(os.path.join(out_v, f)), rows(os.path.join(out_n, f))
                self.assertEqual(len(ours), len(theirs), f)
                for b, (o, t) in enumerate(zip(ours, theirs)):
                    ctx = f"{f} account {o['account']} (book seed {seed})"
                    for col, val in o.items():
                        if col in ("account", "underlying", "status"):
                            self.assertEqual(val, t[col], f"{col} {ctx}")
                        elif col == "worst":
                            # Near-ties may resolve differently in the last ulp: ours must
                            # still be a minimiser of numpy's own PnL vector. "No loss"
                            # (-1) against a loss is such a tie when the loss is at
                            # rounding level (the scan is 0 to 1e-9): the sign of a
                            # last-ulp difference of far out-of-the-money values.
                            w = int(val)
                            if (w < 0) != (int(t[col]) < 0):
                                self.assertTrue(close(o["scan"], 0.0) and close(t["scan"], 0.0),
                                                f"worst {ctx}: {w} vs {t[col]}, scan {o['scan']} vs {t['scan']}")
                                continue
                            if w >= 0 and w != int(t[col]):
                                self.assertTrue(close(pnl[b, w], t["scan"]), f"worst {w} vs {t[col]} {ctx}")
                        else:
                            self.assertTrue(close(val, t[col]), f"{col} {ctx}: {val} vs {t[col]}")

    def test_price_rows_follow_the_book_and_satisfy_parity(self):
        run("gen-book", "--accounts", 2000, "--underlyings", 2, "--out", self.path("b"), "--quiet")
        run("price", "--book", self.path("b"), "--market", self.path("b", "market.json"), "--out", self.path("p.csv"), "--quiet")
        inst = rows(self.path("b", "instruments.csv"))
        prices = rows(self.path("p.csv"))
        self.assertEqual([r["id"] for r in inst], [r["instrument"] for r in prices])
        import json
        market = json.loads(slurp(self.path("b", "market.json")))
        by_id = {r["instrument"]: r for r in prices}
        checked = 0
        for r in inst:
            m = market["underlyings"][r["underlying"]]
            if r["kind"] == "perp":
                self.assertEqual(float(by_id[r["id"]]["price"]), m["spot"])
                continue
            if r["type"] != "C":
                continue
            put_id = r["id"][:-1] + "P"
            T = (float(r["expiry"]) - market["time"]) / 31536000
            if T <= 0:
                continue
            c, p = float(by_id[r["id"]]["price"]), float(by_id[put_id]["price"])
            parity = m["spot"] - float(r["strike"]) * math.exp(-m.get("rate", 0) * T)
            self.assertAlmostEqual(c - p, parity, delta=1e-9 * m["spot"])
            checked += 1
        self.assertGreater(checked, 20)


BAD_CASES = [
    # (file, transform of its text, expected fragment of the error)
    ("instruments.csv", lambda t: t.replace("id,kind", "ident,kind", 1), "instruments.csv:1: header"),
    ("instruments.csv", lambda t: t + "BAD ID,perp,BTC,,,\n", "field 'id'"),
    ("instruments.csv", lambda t: t + "BTC-PERP,perp,BTC,,,\n", "duplicate instrument 'BTC-PERP'"),
    ("instruments.csv", lambda t: t + "X1,future,BTC,,,\n", "field 'kind'"),
    ("instruments.csv", lambda t: t + "X2,option,BTC,1769817600,-5,C\n", "field 'strike': must be in [1e-08, 1e+09]"),
    ("instruments.csv", lambda t: t + "X3,option,BTC,1769817600,nan,C\n", "field 'strike': not a finite number"),
    ("instruments.csv", lambda t: t + "X4,option,BTC,1769817600,100,Q\n", "field 'type'"),
    ("instruments.csv", lambda t: t + "X5,perp,BTC,,100,\n", "field 'strike': must be empty for a perp"),
    ("instruments.csv", lambda t: t + "X6,option,BTC,1769817600,100\n", "expected 6 fields, got 5"),
    ("instruments.csv", lambda t: t.replace("\n", "\n\n", 2), "empty line"),
    ("accounts.csv", lambda t: t + "1,5\n", "duplicate account 1"),
    ("accounts.csv", lambda t: t + "-3,5\n", "field 'account'"),
    ("accounts.csv", lambda t: t + "99999999,inf\n", "field 'cash': not a finite number"),
    ("positions.csv", lambda t: t + "424242,BTC-PERP,1,100\n", "unknown account 424242"),
    ("positions.csv", lambda t: t + "1,NOPE,1,\n", "unknown instrument 'NOPE'"),
    ("positions.csv", lambda t: t + "2,BTC-PERP,NaN,100\n", "field 'quantity'"),
    ("positions.csv", lambda t: t + "2,BTC-PERP,1,\n", "field 'entry_price': missing value"),
    ("positions.csv", lambda t: t + "3,BTC-PERP,1,100\n3,BTC-PERP,2,100\n", "duplicate position of account 3"),
    ("market.json", lambda t: t.replace('"spot": 97000', '"spot": -97000'), "market.json.underlyings.BTC.spot"),
    ("market.json", lambda t: t.replace('"spot": 97000', '"spot": 1e999'), "invalid JSON: number overflow parsing"),
    ("market.json", lambda t: t[:-5], "market.json:"),
    ("market.json", lambda t: t.replace('"BTC"', '"BTX"', 1), "'BTC' is missing"),
    ("market.json", lambda t: t.replace('"a": ', '"a": -1 - ', 1).replace("-1 - ", "-1.0, \"x\": ", 1), "unknown field"),
]


class BadInput(Base):
    def test_every_bad_input_is_rejected_with_its_place_and_nothing_is_written(self):
        good = self.path("good")
        run("gen-book", "--accounts", 50, "--underlyings", 2, "--out", good, "--quiet")
        for n, (fname, mutate, fragment) in enumerate(BAD_CASES):
            book = self.path(f"bad{n}")
            shutil.copytree(good, book)
            with open(os.path.join(book, fname)) as fh:
                text = fh.read()
            mutated = mutate(text)
            self.assertNotEqual(mutated, text, f"case {n} did not change {fname}")
            with open(os.path.join(book, fname), "w") as fh:
                fh.write(mutated)
            out = self.path(f"out{n}")
            for cmd in ("revalue", "price"):
                target = out if cmd == "revalue" else out + ".csv"
                p = run(cmd, "--book", book, "--market", os.path.join(book, "market.json"), "--out", target, check=False)
                self.assertEqual(p.returncode, 1, f"case {n} ({fname}, {cmd}): {p.stderr}")
                self.assertIn(fragment, p.stderr, f"case {n} ({fname}, {cmd})")
                self.assertFalse(os.path.exists(target), f"case {n}: {target} was written")

    def test_existing_output_is_left_untouched_on_error(self):
        good = self.path("good")
        run("gen-book", "--accounts", 20, "--out", good, "--quiet")
        out = self.path("out")
        run("revalue", "--book", good, "--market", os.path.join(good, "market.json"), "--out", out, "--quiet")
        before = {f: slurp(os.path.join(out, f)) for f in os.listdir(out)}
        with open(os.path.join(good, "positions.csv"), "a") as fh:
            fh.write("1,NOPE,1,\n")
        p = run("revalue", "--book", good, "--market", os.path.join(good, "market.json"), "--out", out, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertEqual({f: slurp(os.path.join(out, f)) for f in os.listdir(out)}, before)

    def test_bad_config_names_the_key(self):
        good = self.path("good")
        run("gen-book", "--accounts", 20, "--out", good, "--quiet")
        for text, fragment in (('{"scenarios": [{"spot": 1.1, "vol": "sideways"}]}', "scenarios[0].vol"),
                               ('{"contingency": {"mm_perp": -1}}', "contingency.mm_perp"),
                               ('{"mm_scna": 0.8}', "mm_scna: unknown field"),
                               ('{"underlyings": {"BTC": {"scenarios": []}}}', "underlyings.BTC.scenarios"),
                               ('{"scenarios": ', "cfg.json:1:")):
            with open(self.path("cfg.json"), "w") as fh:
                fh.write(text)
            p = run("revalue", "--book", good, "--market", os.path.join(good, "market.json"), "--config",
                    self.path("cfg.json"), "--out", self.path("o"), check=False)
            self.assertEqual(p.returncode, 1, text)
            self.assertIn(fragment, p.stderr, text)
            self.assertFalse(os.path.exists(self.path("o")))


class Usage(Base):
    def test_help_for_every_command(self):
        for cmd in ("gen-book", "price", "revalue", "default-config"):
            p = run(cmd, "--help")
            self.assertIn("Usage: vaultrisk " + cmd, p.stdout)
        self.assertIn("Commands:", run("--help").stdout)

    def test_usage_errors_exit_2(self):
        self.assertEqual(run("revalue", "--bogus", "1", check=False).returncode, 2)
        self.assertEqual(run("revalue", "--market", "m.json", check=False).returncode, 2)
        self.assertEqual(run("frobnicate", check=False).returncode, 2)
        self.assertEqual(run("gen-book", "--accounts", "ten", "--out", self.path("x"), check=False).returncode, 2)

    def test_device_flag(self):
        run("gen-book", "--accounts", 20, "--out", self.path("b"), "--quiet")
        args = ["revalue", "--book", self.path("b"), "--market", self.path("b", "market.json"), "--out", self.path("o")]
        self.assertIn("device: cpu", run(*args, "--device", "cpu").stderr)
        p = run(*args, "--device", "tpu", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("expected auto, cpu or gpu", p.stderr)

    def test_default_config_round_trips(self):
        run("gen-book", "--accounts", 300, "--out", self.path("b"), "--quiet")
        with open(self.path("cfg.json"), "w") as fh:
            fh.write(run("default-config").stdout)
        base = ["--book", self.path("b"), "--market", self.path("b", "market.json"), "--quiet"]
        run("revalue", *base, "--out", self.path("o1"))
        run("revalue", *base, "--config", self.path("cfg.json"), "--out", self.path("o2"))
        for f in ("accounts.csv", "account_underlyings.csv"):
            self.assertEqual(slurp(self.path("o1", f)), slurp(self.path("o2", f)))

    def test_a_per_underlying_override_changes_only_that_underlying(self):
        run("gen-book", "--accounts", 300, "--underlyings", 2, "--out", self.path("b"), "--quiet")
        with open(self.path("cfg.json"), "w") as fh:
            fh.write('{"underlyings": {"ETH": {"contingency": {"mm_perp": 0.1}, "mm_scan": 1.0}}}')
        base = ["--book", self.path("b"), "--market", self.path("b", "market.json"), "--quiet"]
        run("revalue", *base, "--out", self.path("o1"))
        run("revalue", *base, "--config", self.path("cfg.json"), "--out", self.path("o2"))
        a, b = rows(self.path("o1", "account_underlyings.csv")), rows(self.path("o2", "account_underlyings.csv"))
        changed = {x["underlying"] for x, y in zip(a, b) if x["mm"] != y["mm"]}
        self.assertEqual(changed, {"ETH"})


if __name__ == "__main__":
    result = unittest.main(argv=[sys.argv[0], "-v"], exit=False).result
    failed = len(result.failures) + len(result.errors)
    print(f"{result.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
