#!/usr/bin/env python3
"""SPEC §8 stress in vectorised numpy/scipy: what a quant would write without vaultrisk.

The comparator of bench/stress.sh and the independent implementation that
tests/test_stress.py checks `vaultrisk stress --history` against.

    numpy_stress.py --book DIR --market FILE --out DIR (--history CSV --horizon-days H [--filtered]
                    | --monte-carlo N --horizon-days H --seed S) [--confidence A] [--timing]

Full revaluation: a dense instruments x scenarios table of V' - V, then a
scipy.sparse accounts x instruments position matrix times it, a batch of
scenarios at a time. Monte Carlo draws its normals from numpy (not cuRAND), so
its figures are the same method on other random numbers: a timing comparator.
Writes scenarios.csv and accounts.csv (var, es, worst_scenario, worst_pnl,
insolvent_scenarios) in vaultrisk's format.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numpy_revalue import YEAR, black, read_csv, read_inputs  # noqa: E402


def atm_vol(m, t0):
    """SVI mark vol at k = 0 of the expiry nearest to 30 days after t0 (the earlier on a tie)."""
    best = None
    for e in m.get("expiries", []):
        if e["expiry"] <= t0:
            continue
        d = abs(e["expiry"] - (t0 + 30 * 86400))
        if best is None or d < best[0] or (d == best[0] and e["expiry"] < best[1]["expiry"]):
            best = (d, e)
    s = best[1]["svi"]
    T = (best[1]["expiry"] - t0) / YEAR
    w = s["a"] + s["b"] * (s["rho"] * (0 - s["m"]) + math.sqrt(s["m"] ** 2 + s["sigma"] ** 2))
    return math.sqrt(w / T)


def history_scenarios(path, unds, h, filtered, sigma):
    rows = read_csv(path, {"date": str, "underlying": str, "spot": float, "atm_vol": float})
    dates = sorted(set(rows["date"].tolist()))
    di = {d: i for i, d in enumerate(dates)}
    spot = np.full((len(dates), len(unds)), np.nan)
    vol = np.full_like(spot, np.nan)
    ui = {u: i for i, u in enumerate(unds)}
    for d, u, s, v in zip(rows["date"], rows["underlying"], rows["spot"], rows["atm_vol"]):
        if u in ui:
            spot[di[d], ui[u]], vol[di[d], ui[u]] = s, v
    ratio = spot[h:] / spot[:-h]
    sm = np.exp(np.log(ratio) * sigma[None, :] / vol[:-h]) if filtered else ratio
    return sm, vol[h:] - vol[:-h], dates[h:]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--book", required=True)
    ap.add_argument("--market", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--history")
    ap.add_argument("--filtered", action="store_true")
    ap.add_argument("--monte-carlo", type=int)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--horizon-days", type=float, required=True)
    ap.add_argument("--confidence", type=float, default=0.99)
    ap.add_argument("--timing", action="store_true")
    a = ap.parse_args()
    t0 = time.perf_counter()
    ins, acc, pos, market = read_inputs(a.book, a.market)

    unds = sorted(set(ins["underlying"].tolist()))
    iu = np.array([unds.index(u) for u in ins["underlying"]])
    perp = ins["kind"] == "perp"
    call = ins["type"] == "C"
    strike = np.where(perp, 1.0, ins["strike"])
    mk = [market["underlyings"][u] for u in unds]
    S = np.array([m["spot"] for m in mk])[iu]
    r = np.array([m.get("rate", 0.0) for m in mk])[iu]
    utime = np.array([float(m.get("time", market["time"])) for m in mk])
    T = np.where(perp, 0.0, (ins["expiry"] - utime[iu]) / YEAR)
    live = (~perp) & (T > 0)
    Tl = np.where(live, T, 1.0)
    F = S * np.exp(r * Tl)
    svi = np.zeros((len(strike), 5))
    for u, m in enumerate(mk):
        for e in m.get("expiries", []):
            sel = (iu == u) & (ins["expiry"] == e["expiry"])
            svi[sel] = [e["svi"][k] for k in ("a", "b", "rho", "m", "sigma")]
    x = np.log(strike / F) - svi[:, 3]
    w = svi[:, 0] + svi[:, 1] * (svi[:, 2] * x + np.sqrt(x * x + svi[:, 4] ** 2))
    vol = np.where(live, np.sqrt(np.where(live, w, 1.0) / Tl), 0.0)
    price = np.where(live, black(call, F, strike, vol * np.sqrt(Tl), np.exp(-r * Tl)),
                     np.maximum(np.where(call, S - strike, strike - S), 0.0))

    index = {k: i for i, k in enumerate(ins["id"].tolist())}
    pi = np.array([index[k] for k in pos["instrument"]])
    acct_ids = acc["account"]
    aidx = {int(k): i for i, k in enumerate(acct_ids.tolist())}
    pa = np.array([aidx[int(k)] for k in pos["account"]])
    q = pos["quantity"]
    entry = np.nan_to_num(pos["entry_price"])
    P = sp.csr_matrix((q, (pa, pi)), shape=(len(acct_ids), len(strike)))
    equity = acc["cash"] + P @ np.where(perp, 0.0, price) + np.bincount(pa, np.where(perp[pi], q * (S[pi] - entry), 0.0),
                                                                       minlength=len(acct_ids))
    h = a.horizon_days / 365.0
    if a.history:
        sigma = np.array([atm_vol(m, float(market['time'])) for m in mk]) if a.filtered else None
        sm, dv, names = history_scenarios(a.history, unds, int(a.horizon_days), a.filtered, sigma)
    else:
        n, U = a.monte_carlo, len(unds)
        sigma = np.array([atm_vol(m, float(market['time'])) for m in mk])
        z = np.random.default_rng(a.seed).standard_normal((n, U))
        sm = np.exp(-0.5 * sigma ** 2 * h + sigma * math.sqrt(h) * z)
        dv = np.zeros_like(sm)
        names = [str(i) for i in range(n)]
    t_load = time.perf_counter()

    N = sm.shape[0]
    m = max(1, math.ceil((1 - a.confidence) * N - 1e-9))
    batch = max(1, min(N, int(2 ** 27 / (8 * (len(acct_ids) + len(strike))))))
    vault = np.empty(N)
    bad = np.empty(N)
    insolvent = np.empty(N, dtype=np.int64)
    tail = np.full((len(acct_ids), 0), 0.0)
    worst_loss = np.full(len(acct_ids), -np.inf)
    worst_at = np.full(len(acct_ids), -1)
    ins_count = np.zeros(len(acct_ids), dtype=np.int64)
    Tp = T[:, None] - h
    for b0 in range(0, N, batch):
        b1 = min(N, b0 + batch)
        s_, d_ = sm[b0:b1].T[iu], dv[b0:b1].T[iu]          # instruments x batch
        S2 = S[:, None] * s_
        live2 = (~perp)[:, None] & (Tp > 0)
        T2 = np.where(live2, Tp, 1.0)
        v2 = np.maximum(0.0, vol[:, None] + d_)
        opt = np.where(live2, black(call[:, None], S2 * np.exp(r[:, None] * T2), strike[:, None], v2 * np.sqrt(T2),
                                    np.exp(-r[:, None] * T2)),
                       np.maximum(np.where(call[:, None], S2 - strike[:, None], strike[:, None] - S2), 0.0))
        dV = np.where(perp[:, None], S[:, None] * (s_ - 1.0), opt - price[:, None])
        pnl = P @ dV                                          # accounts x batch
        vault[b0:b1] = pnl.sum(axis=0)
        after = equity[:, None] + pnl
        bad[b0:b1] = np.maximum(0.0, -after).sum(axis=0)
        insolvent[b0:b1] = (after < 0).sum(axis=0)
        ins_count += (after < 0).sum(axis=1)
        loss = -pnl
        j = np.argmax(loss, axis=1)
        lj = loss[np.arange(len(acct_ids)), j]
        better = lj > worst_loss
        worst_at = np.where(better, b0 + j, worst_at)
        worst_loss = np.where(better, lj, worst_loss)
        both = np.concatenate([tail, loss], axis=1)
        k = min(m, both.shape[1])
        tail = -np.sort(-np.partition(both, both.shape[1] - k, axis=1)[:, both.shape[1] - k:], axis=1)
    var, es = tail[:, m - 1], tail.mean(axis=1)
    t_compute = time.perf_counter()

    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "scenarios.csv"), "w") as fh:
        fh.write("scenario,name,vault_pnl,bad_debt,insolvent_accounts\n")
        for i in range(N):
            fh.write(f"{i},{names[i]},{vault[i]!r},{bad[i]!r},{insolvent[i]}\n")
    with open(os.path.join(a.out, "accounts.csv"), "w") as fh:
        fh.write("account,equity,var,es,worst_scenario,worst_pnl,insolvent_scenarios\n")
        for i in range(len(acct_ids)):
            ws = int(worst_at[i]) if worst_loss[i] > 0 else -1
            fh.write(f"{acct_ids[i]},{equity[i]!r},{var[i]!r},{es[i]!r},{ws},{-worst_loss[i]!r},{ins_count[i]}\n")
    if a.timing:
        print(f"numpy_stress: load {t_load - t0:.3f} s, compute {t_compute - t_load:.3f} s, "
              f"write {time.perf_counter() - t_compute:.3f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
