#!/usr/bin/env python3
"""vaultrisk's methodology (SPEC §3-4, default grid) in vectorised numpy/scipy.

What a quant would write without vaultrisk: the comparator for the benchmarks and
an independent implementation the CLI tests check vaultrisk's output against.

    numpy_revalue.py --book DIR --market FILE --out DIR [--timing]

Writes accounts.csv and account_underlyings.csv in vaultrisk's format.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
from scipy.special import ndtr

try:
    import pandas as pd
except ImportError:  # numpy-only fallback, slower loading
    pd = None

YEAR = 31536000.0
CORE = [0.865, 0.91, 0.955, 1.0, 1.045, 1.09, 1.135]
GRID = [(s, v, 1.0) for s in CORE for v in (1, 0, -1)] + [(0.82, 1, 1.0), (1.18, 1, 1.0)] + [
    (s, 1, d) for s, d in zip([0.34, 0.67, 1.5, 2, 3, 4, 5, 6],
                              [0.21, 0.42, 0.2772, 0.1386, 0.0693, 0.0462, 0.03465, 0.02772])]


def read_csv(path, dtypes):
    if pd is not None:
        df = pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values={k: [""] for k in dtypes})
        return {k: df[k].to_numpy() for k in dtypes}
    raw = np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding="utf-8", missing_values="")
    return {k: np.asarray(raw[k]) for k in dtypes}


def read_inputs(book, market_file):
    """The book's three CSVs as column dicts, and the market JSON."""
    ins = read_csv(os.path.join(book, "instruments.csv"),
                   {"id": str, "kind": str, "underlying": str, "expiry": float, "strike": float, "type": str})
    acc = read_csv(os.path.join(book, "accounts.csv"), {"account": np.uint64, "cash": float})
    pos = read_csv(os.path.join(book, "positions.csv"),
                   {"account": np.uint64, "instrument": str, "quantity": float, "entry_price": float})
    with open(market_file) as fh:
        return ins, acc, pos, json.load(fh)


def black(call, f, k, sd, disc):
    """Black-76 price with the SPEC limits (sd < 1e-12: discounted intrinsic)."""
    ok = sd >= 1e-12
    safe_sd = np.where(ok, sd, 1.0)
    d1 = np.log(f / k) / safe_sd + 0.5 * safe_sd
    d2 = d1 - safe_sd
    v = np.where(call, f * ndtr(d1) - k * ndtr(d2), k * ndtr(-d2) - f * ndtr(-d1))
    v = np.where(ok, np.maximum(v, 0.0), np.maximum(np.where(call, f - k, k - f), 0.0))
    return disc * v


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--book", required=True)
    ap.add_argument("--market", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--timing", action="store_true", help="print load/compute/write seconds to stderr")
    ap.add_argument("--pnl-out", help="also save the per-block scenario PnL matrix (.npy)")
    a = ap.parse_args()
    t0 = time.perf_counter()

    ins, acc, pos, market = read_inputs(a.book, a.market)
    t_load = time.perf_counter()

    # Instruments.
    unds = sorted(set(ins["underlying"].tolist()))
    uidx = {u: i for i, u in enumerate(unds)}
    iu = np.array([uidx[u] for u in ins["underlying"]])
    perp = ins["kind"] == "perp"
    call = ins["type"] == "C"
    strike = np.where(perp, 1.0, ins["strike"])
    expiry = np.where(perp, 0.0, ins["expiry"])
    mk = [market["underlyings"][u] for u in unds]
    spot_u = np.array([m["spot"] for m in mk])
    rate_u = np.array([m.get("rate", 0.0) for m in mk])
    conf_u = np.array([m.get("confidence", 1.0) for m in mk])
    S, r = spot_u[iu], rate_u[iu]
    tte = expiry - float(market["time"])
    T = tte / YEAR
    live = (~perp) & (T > 0)
    Tl = np.where(live, T, 1.0)
    F, D = S * np.exp(r * Tl), np.exp(-r * Tl)
    svi = np.zeros((len(strike), 5))
    for u, m in enumerate(mk):
        for e in m.get("expiries", []):
            sel = (iu == u) & (expiry == e["expiry"])
            svi[sel] = [e["svi"][k] for k in ("a", "b", "rho", "m", "sigma")]
    x = np.log(strike / F) - svi[:, 3]
    w = svi[:, 0] + svi[:, 1] * (svi[:, 2] * x + np.sqrt(x * x + svi[:, 4] ** 2))
    if np.any(live & ~(w > 0)):
        sys.exit("numpy_revalue: non-positive SVI variance or missing slice")
    vol = np.where(live, np.sqrt(np.where(live, w, 1.0) / Tl), 0.0)
    price = np.where(live, black(call, F, strike, vol * np.sqrt(Tl), D),
                     np.maximum(np.where(call, S - strike, strike - S), 0.0))
    sd = vol * np.sqrt(Tl)
    d1 = np.log(F / strike) / np.where(sd > 0, sd, 1.0) + 0.5 * sd
    d2 = d1 - sd
    pdf = np.exp(-0.5 * d1 * d1) / np.sqrt(2 * np.pi)
    g_ok = live & (sd >= 1e-12)
    delta = np.where(g_ok, np.where(call, ndtr(d1), -ndtr(-d1)), 0.0)
    gamma = np.where(g_ok, pdf / (S * np.where(sd > 0, sd, 1.0)), 0.0)
    vega = np.where(g_ok, S * pdf * np.sqrt(Tl), 0.0)
    decay = -S * pdf * vol / (2 * np.sqrt(Tl))
    theta = np.where(g_ok, np.where(call, decay - r * strike * D * ndtr(d2), decay + r * strike * D * ndtr(-d2)), 0.0)
    rho = np.where(g_ok, np.where(call, strike * Tl * D * ndtr(d2), -strike * Tl * D * ndtr(-d2)), 0.0)

    # Scenario table: V_j - V per unit (perps: S s_j - S).
    s_j = np.array([g[0] for g in GRID])
    v_j = np.array([g[1] for g in GRID])
    d_j = np.array([g[2] for g in GRID])
    m = (2592000.0 / np.maximum(tte, 86400.0)) ** np.where(tte <= 2592000, 0.3, 0.13)
    up, down = 1 + 0.5 * m, np.maximum(0.0, 1 - 0.3 * m)
    vs = np.where(v_j[None, :] > 0, np.maximum(0.4, vol[:, None] * up[:, None]),
                  np.where(v_j[None, :] < 0, vol[:, None] * down[:, None], vol[:, None]))
    shocked = black(call[:, None], F[:, None] * s_j[None, :], strike[:, None], vs * np.sqrt(Tl)[:, None], D[:, None])
    expired = np.maximum(np.where(call[:, None], S[:, None] * s_j - strike[:, None], strike[:, None] - S[:, None] * s_j), 0.0)
    table = np.where(live[:, None], shocked, expired) - price[:, None]
    table = np.where(perp[:, None], S[:, None] * s_j[None, :] - S[:, None], table)

    # Positions -> (account, underlying) blocks.
    acct_ids = acc["account"]
    order = np.argsort(acct_ids, kind="stable")
    pa = order[np.searchsorted(acct_ids, pos["account"], sorter=order)]
    iid = {s: i for i, s in enumerate(ins["id"])}
    pi = np.array([iid[s] for s in pos["instrument"]], dtype=np.int64)
    q = pos["quantity"]
    entry = np.nan_to_num(pos["entry_price"].astype(float))
    pu = iu[pi]
    key = pa.astype(np.int64) * len(unds) + pu
    srt = np.argsort(key, kind="stable")
    key, pa, pi, pu, q, entry = key[srt], pa[srt], pi[srt], pu[srt], q[srt], entry[srt]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    bsum = lambda v: np.add.reduceat(v, starts, axis=0) if len(starts) else np.zeros((0,) + v.shape[1:])
    is_perp = perp[pi]
    Sp = spot_u[pu]
    mtm = bsum(np.where(is_perp, q * (Sp - entry), q * price[pi]))
    greeks = [bsum(np.where(is_perp, q, q * delta[pi]))] + [bsum(q * g[pi]) for g in (gamma, vega, theta, rho)]
    pnl = bsum(q[:, None] * table[pi]) * d_j[None, :]
    mn = pnl.min(axis=1) if len(starts) else np.zeros(0)
    scan = np.minimum(0.0, mn)
    worst = np.where(mn < 0, pnl.argmin(axis=1) if len(starts) else 0, -1)
    perp_q = bsum(np.where(is_perp, np.abs(q), 0.0))
    short_q = bsum(np.where(is_perp, 0.0, np.maximum(0.0, -q)))
    gross = bsum(np.abs(q))
    bu, ba = pu[starts], pa[starts]
    Sb, cb = spot_u[bu], conf_u[bu]
    mmc = 0.03 * perp_q * Sb + 0.003 * short_q * Sb
    imc = mmc + 0.01 * perp_q * Sb + 0.002 * short_q * Sb + np.where(cb < 0.55, (1 - cb) * gross * Sb, 0.0)
    mm_b, im_b = mmc - 0.8 * scan, imc - 1.0 * scan
    n = len(acct_ids)
    equity = acc["cash"] + np.bincount(ba, mtm, n)
    mm, im = np.bincount(ba, mm_b, n), np.bincount(ba, im_b, n)
    status = np.where(equity - mm < 0, "liquidatable", np.where(equity - im < 0, "margin_call", "healthy"))
    t_compute = time.perf_counter()

    os.makedirs(a.out, exist_ok=True)
    fmt = lambda v: np.char.mod("%.17g", v)
    with open(os.path.join(a.out, "accounts.csv"), "w") as fh:
        fh.write("account,equity,mm,im,mm_surplus,im_surplus,status\n")
        cols = [acct_ids.astype(str), fmt(equity), fmt(mm), fmt(im), fmt(equity - mm), fmt(equity - im), status]
        fh.write("\n".join(",".join(row) for row in zip(*cols)) + "\n")
    with open(os.path.join(a.out, "account_underlyings.csv"), "w") as fh:
        fh.write("account,underlying,mtm,delta,gamma,vega,theta,rho,scan,worst,mm,im\n")
        cols = [acct_ids[ba].astype(str), np.array(unds)[bu], fmt(mtm)] + [fmt(g) for g in greeks] + [
            fmt(scan), worst.astype(str), fmt(mm_b), fmt(im_b)]
        if len(starts):
            fh.write("\n".join(",".join(row) for row in zip(*cols)) + "\n")
    if a.pnl_out:
        np.save(a.pnl_out, pnl)
    t_write = time.perf_counter()
    if a.timing:
        print(f"numpy_revalue: load {t_load - t0:.3f} s, compute {t_compute - t_load:.3f} s, "
              f"write {t_write - t_compute:.3f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
