"""Helpers shared by the whole-process CLI tests (test_cli.py, test_stress.py)."""
import csv
import subprocess


def runner(vaultrisk):
    """run(*args, check=True): vaultrisk with these arguments; an AssertionError with
    its stderr when it fails and `check` is set."""
    def run(*args, check=True):
        p = subprocess.run([vaultrisk, *map(str, args)], capture_output=True, text=True, timeout=300)
        if check and p.returncode != 0:
            raise AssertionError(f"vaultrisk {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr}")
        return p
    return run


def rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def close(a, b, rel=1e-9):
    a, b = float(a), float(b)
    return abs(a - b) <= rel * (1.0 + abs(b))
