#!/usr/bin/env python3
"""Writes the checked-in seed corpus of the libFuzzer targets (tests/fuzz/corpus/<target>/).

Seeds are valid inputs plus a few near misses, so that the fuzzer starts from the
shapes of SPEC §2, §4 and §6 rather than from nothing. Run again after a format
changes; the files are committed.
"""
import json
import pathlib
import shutil

ROOT = pathlib.Path(__file__).resolve().parent / "corpus"
SVI = {"a": 0.04, "b": 0.1, "rho": -0.3, "m": 0.0, "sigma": 0.2}
EXPIRY = 1806048000


def tick(und="BTC", seq=7, spot=60000.0, **extra):
    body = {"underlying": und, "seq": seq, "time_ms": 1700000000000, "spot": spot, "rate": 0.03,
            "confidence": 1, "expiries": [{"expiry": EXPIRY, "svi": SVI}]}
    body.update(extra)
    return json.dumps(body)


SIG = "0x" + "11" * 65
SEEDS = {
    "tick": [
        f"oracle.tick.BTC\0{tick()}\0{SIG}",
        f"oracle.tick.BTC\0{tick(spot=-5)}\0{SIG}",
        f"oracle.tick.ETH\0{tick('ETH', 1, 3000.0, expiries=[])}\0",
        f"oracle.tick.BTC\0{tick(rate=0.9)}\0{SIG}",
        "oracle.tick.BTC\0{\"underlying\":\"BTC\"}\0",
    ],
    "vault_event": [
        'vault.event.deposit.1\0{"id":"d1","account":1,"amount":250}',
        'vault.event.withdraw.2\0{"id":"w1","account":2,"amount":10}',
        'vault.event.trade.1\0{"id":"t1","account":1,"instrument":"BTC-PERP","quantity":-0.5,"price":61000}',
        'vault.event.trade.3\0{"id":"t2","account":3,"instrument":"BTC-20270326-60000-C","quantity":1,"price":2500}',
        'vault.event.instrument.BTC\0' + json.dumps({"id": "BTC-20270326-70000-P", "kind": "option", "underlying": "BTC",
                                                   "expiry": EXPIRY, "strike": 70000, "type": "P"}),
        'vault.event.deposit.1\0{"id":"d2","account":1,"amount":1e59}\0vault.event.deposit.1\0{"id":"d2","account":1,"amount":5}',
        'vault.event.trade.1\0{"id":"s","account":1,"instrument":"BTC-20270326-60000-C","quantity":-1e300,"price":0}',
    ],
    "book_csv": [
        "id,kind,underlying,expiry,strike,type\nBTC-PERP,perp,BTC,,,\nBTC-C,option,BTC,1806048000,60000,C\n\0"
        "account,cash\n1,1000\n2,-3.25\n\0"
        "account,instrument,quantity,entry_price\n1,BTC-PERP,0.5,58000\n2,BTC-C,-2,\n",
        "id,kind,underlying,expiry,strike,type\r\nX,perp,U,,,\r\n\0account,cash\r\n7,1e3\r\n\0"
        "account,instrument,quantity,entry_price\r\n7,X,1,1\r\n",
        "id,kind,underlying,expiry,strike,type\nA,option,U,1.5,0,Q\n\0account,cash\n\0account,instrument,quantity,entry_price\n",
    ],
    "market_json": [
        json.dumps({"time": 1700000000, "underlyings": {"BTC": {"spot": 60000, "rate": 0.03, "confidence": 1,
                                                               "expiries": [{"expiry": EXPIRY, "svi": SVI}]}}}),
        json.dumps({"time": 1700000000, "underlyings": {"ETH": {"spot": 3000, "rate": 0, "expiries": []}}}),
        '{"time": 1, "underlyings": {"X": {"spot": 1e308}}}',
    ],
    "methodology": [
        "{}",
        json.dumps({"scenarios": [{"spot": 0.865, "vol": "up", "damp": 1}, {"spot": 1, "vol": "none"},
                                  {"spot": 6, "vol": "down", "damp": 0.02772}],
                    "vol_shock": {"ref_horizon": 2592000, "min_tte": 86400, "p_short": 0.3, "p_long": 0.13,
                                  "up_k": 0.5, "down_k": 0.3, "up_floor": 0.4},
                    "contingency": {"mm_perp": 0.03, "mm_short": 0.003, "im_perp": 0.01, "im_short": 0.002,
                                    "low_confidence": 0.55},
                    "mm_scan": 0.8, "im_scan": 1,
                    "underlyings": {"BTC": {"mm_scan": 0.9, "contingency": {"mm_perp": 0.05}}}}),
        '{"unknown": 1}',
    ],
    "api_request": [
        '{"account": 1}', '{"account": "18446744073709551615"}', '{"account": "1abc"}', '{"account": -1}',
        '{"epoch": 3, "account": "0042"}', '[]', '{"account": 1.5}',
    ],
    "json_rpc": [
        '{"jsonrpc":"2.0","id":1,"result":"0x1a"}',
        '{"jsonrpc":"2.0","id":1,"error":{"code":3,"message":"execution reverted","data":"0x08c379a0"}}',
        '{"jsonrpc":"2.0","id":1,"result":null}',
        '{"jsonrpc":"2.0","id":1,"error":"boom"}',
        '<html>502</html>',
    ],
}

if __name__ == "__main__":
    shutil.rmtree(ROOT, ignore_errors=True)
    for target, seeds in SEEDS.items():
        d = ROOT / target
        d.mkdir(parents=True)
        for i, s in enumerate(seeds):
            (d / f"seed-{i:02d}").write_bytes(s.encode())
    print(f"wrote {sum(map(len, SEEDS.values()))} seeds under {ROOT}")
