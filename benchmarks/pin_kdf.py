"""Cost of one PIN verifier evaluation, and what it means for a brute force of the PIN space.

    .venv/bin/python -m benchmarks.pin_kdf [--quick] [--json out.json] [--calibrate MS]

For each parameter set: the median (min, max) time of one KDF evaluation on
one core of this machine, and from it the time one core needs to try every
PIN of 4 and of 6 digits (an attacker who holds the verifier AND the site
secret; without the secret no guess can be tested at all). A plain salted
SHA-256 of the PIN is timed alongside as the baseline the KDF replaces.

These figures are for the machine the script runs on. Figures for a
Raspberry Pi are a projection until this script is run there::

    cd ~/face-kiosk    # the checkout systemd/install.sh was run from
    /opt/kiosk/venv/bin/python -m benchmarks.pin_kdf --calibrate 500 --json pin_kdf_pi.json

(``--calibrate MS`` also finds the most Argon2id passes over 64 MiB that fit
in MS milliseconds on that machine, and prints them as a ``[second_factor.kdf]``
section for the admin tool.) Stop the kiosk service first, or expect its load
in the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import time
from typing import Any

from benchmarks.machine import machine, versions
from kiosk.factor.pin import KdfParams, argon2_available, default_params, derive

SECRET = os.urandom(32)
SETS: list[tuple[str, KdfParams]] = [
    ("argon2id 64 MiB t=3 (default)", KdfParams("argon2id", memory_kib=65536, iterations=3)),
    ("argon2id 64 MiB t=1", KdfParams("argon2id", memory_kib=65536, iterations=1)),
    ("argon2id 19 MiB t=2 (OWASP minimum)", KdfParams("argon2id", memory_kib=19456, iterations=2)),
    ("scrypt N=2^16 r=8 (64 MiB, fallback)", KdfParams("scrypt", log2_n=16, r=8, p=1)),
    ("scrypt N=2^15 r=8 (32 MiB)", KdfParams("scrypt", log2_n=15, r=8, p=1)),
]


def _time(fn: Any, repeat: int) -> dict[str, float]:
    fn()  # warm-up: first touch of the memory
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return {"median_s": statistics.median(samples), "min_s": min(samples), "max_s": max(samples), "n": repeat}


def _human(seconds: float) -> str:
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.2f} s" if seconds >= 0.01 else f"{seconds * 1e3:.3f} ms"


def measure(params: KdfParams, repeat: int) -> dict[str, Any]:
    salt = os.urandom(16)
    t = _time(lambda: derive("123456", salt, SECRET, params), repeat)
    per = t["median_s"]
    return {**{k: round(v, 4) if isinstance(v, float) else v for k, v in t.items()},
            "memory_mib": params.memory_bytes / 2**20, "verifier_params": params.encode(),
            "all_4_digit_per_core_s": round(per * 1e4, 1), "all_6_digit_per_core_s": round(per * 1e6, 1)}


def baseline(repeat: int) -> dict[str, Any]:
    salt = os.urandom(16)
    n = 10_000
    t = _time(lambda: [hashlib.sha256(salt + f"{i:06d}".encode()).digest() for i in range(n)], max(3, repeat // 2))
    per = t["median_s"] / n
    return {"per_guess_s": per, "all_4_digit_per_core_s": per * 1e4, "all_6_digit_per_core_s": per * 1e6}


def calibrate(target_ms: float, repeat: int) -> KdfParams:
    """The most passes over 64 MiB (at least 1) whose median stays within ``target_ms`` here."""
    best = KdfParams("argon2id", memory_kib=65536, iterations=1)
    for t in range(1, 17):
        p = KdfParams("argon2id", memory_kib=65536, iterations=t)
        if measure(p, repeat)["median_s"] * 1000 > target_ms:
            break
        best = p
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--calibrate", type=float, metavar="MS", help="find Argon2id passes fitting MS milliseconds")
    args = ap.parse_args()
    repeat = 3 if args.quick else 9
    sets = [(name, p) for name, p in SETS if p.algorithm == "scrypt" or argon2_available()]
    load = os.getloadavg()
    m = {**machine(), "packages": versions("cryptography"), "loadavg_at_start": [round(x, 2) for x in load]}
    print(f"machine: {m['cpu']}, {m['cores']} cores, load average {load[0]:.2f} at start; "
          f"cryptography {m['packages'].get('cryptography')}; Argon2id available: {argon2_available()}")
    print(f"default parameters here: {default_params().algorithm} {default_params().encode()}")
    base = baseline(repeat)
    print(f"\nbaseline, salted SHA-256 of a PIN: {base['per_guess_s'] * 1e6:.2f} µs per guess; every 4-digit PIN "
          f"{_human(base['all_4_digit_per_core_s'])}, every 6-digit PIN {_human(base['all_6_digit_per_core_s'])} per core")
    print(f"\n{'parameters':40} {'median (min-max)':>24} {'4 digits/core':>14} {'6 digits/core':>14} {'x SHA-256':>10}")
    results = {}
    for name, params in sets:
        r = measure(params, repeat)
        results[name] = r
        ratio = r["median_s"] / base["per_guess_s"]
        print(f"{name:40} {r['median_s'] * 1e3:8.1f} ms ({r['min_s'] * 1e3:.0f}-{r['max_s'] * 1e3:.0f}) "
              f"{_human(r['all_4_digit_per_core_s']):>14} {_human(r['all_6_digit_per_core_s']):>14} {ratio:10.3g}")
    print(f"\nn = {repeat} evaluations per set (median). Times are per guess on ONE core of THIS machine; an attacker "
          "with the site secret and many cores divides them by the core count, and an average search finds the PIN "
          "in half the time. Raspberry Pi figures are a projection until this script runs on one (see --help).")
    out: dict[str, Any] = {"machine": m, "repeat": repeat, "baseline_sha256": base, "sets": results}
    if args.calibrate:
        best = calibrate(args.calibrate, repeat)
        out["calibrated"] = {"target_ms": args.calibrate, "iterations": best.iterations, "memory_kib": best.memory_kib}
        print(f"\nwithin {args.calibrate:.0f} ms here:\n[second_factor.kdf]\nalgorithm = \"argon2id\"\n"
              f"memory_kib = {best.memory_kib}\niterations = {best.iterations}\nlanes = 1")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
