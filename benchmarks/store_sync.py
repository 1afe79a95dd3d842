"""Applying signed enrollments to the store, alone and with the service's gallery hook.

    .venv/bin/python -m benchmarks.store_sync [--n 10000] [--json out.json]

"store alone": verify each message (as the sync core does) and apply it; the
gallery is not loaded. "with hook": the gallery is loaded first, so every
apply also updates it (kiosk.gallery), and after each message the hook reads
the gallery as the service does (``len(store.gallery())``). Before the
incremental gallery, that hook rebuilt the whole gallery per message.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from benchmarks.machine import machine
from benchmarks.report import save
from kiosk.clock import TrustedClock
from kiosk.mqtt.protocol import Signer, parse
from kiosk.mqtt.trust import SiteTrust
from kiosk.records import Enrollment
from kiosk.store import Store
from kiosk.vision.quant import l2_normalize

FP = "f" * 64
SITE = "hq"


def payloads(n: int, signer: Signer) -> list[bytes]:
    rng = np.random.default_rng(0)
    base = int(time.time() * 1000) - n
    return [signer.enrollment(SITE, Enrollment(f"p{i}", f"Person {i}", base + i, FP,
                                               l2_normalize(rng.normal(size=(3, 128))))) for i in range(n)]


def run(n: int, tmp: Path, hook: bool, messages: list[bytes], signer: Signer) -> dict[str, Any]:
    store = Store(tmp / f"bench-{hook}.db", b"k" * 32, FP)
    trust = SiteTrust(store, SITE, TrustedClock(lambda: True),
                      static_keys={signer.key_id: signer.private.public_key()})
    keys = trust.keys()
    if hook:
        store.gallery()
    t0 = time.perf_counter()
    for i, p in enumerate(messages):
        record = parse(p, keys, SITE, topic_person=f"p{i}")
        assert trust.admits(record.person_id, record.revision) is None
        assert store.apply(record).applied
        if hook:
            len(store.gallery())
    apply_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows = len(store.gallery())
    gallery_s = time.perf_counter() - t0
    store.close()
    return {"n": n, "hook": hook, "apply_s": round(apply_s, 3), "per_enrollment_ms": round(1000 * apply_s / n, 3),
            "gallery_rows": rows, "gallery_after_s": round(gallery_s, 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    signer = Signer(Ed25519PrivateKey.generate())
    messages = payloads(args.n, signer)
    with tempfile.TemporaryDirectory() as d:
        alone = run(args.n, Path(d), False, messages, signer)
        hooked = run(args.n, Path(d), True, messages, signer)
    ratio = hooked["apply_s"] / alone["apply_s"]
    res = {"machine": machine(), "store_alone": alone, "with_hook": hooked, "ratio": round(ratio, 2)}
    print(f"store alone: {alone['n']} signed enrollments in {alone['apply_s']} s ({alone['per_enrollment_ms']} ms each)")
    print(f"with hook:   {hooked['n']} signed enrollments in {hooked['apply_s']} s ({hooked['per_enrollment_ms']} ms "
          f"each); ratio {ratio:.2f} (target <= 2)")
    print(f"full verified gallery load after the run (store alone): {alone['gallery_after_s']} s for "
          f"{alone['gallery_rows']} rows")
    save(res, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
