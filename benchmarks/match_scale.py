"""1:N matching at scale: the door's top-2 query against one template per person.

    .venv/bin/python -m benchmarks.match_scale [--json out.json] [--quick]

Per query (every fused probe): ``Gallery.top2`` (best person, best score, best
score of anybody else) next to the plain ``Gallery.match`` it replaces, at
1,000 / 10,000 / 100,000 people. Per gallery change (not per frame):
fusing 3 rows per person into templates (``Gallery.from_rows``) and deriving
the threshold for the new size (``kiosk.policy.threshold.derive``). Medians of
repeated runs; the ratio top2/match is from the same process.
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.machine import machine, timeit
from benchmarks.report import save
from kiosk.match import Gallery
from kiosk.policy.scoremodel import ScoreModel
from kiosk.policy.threshold import derive
from kiosk.vision.quant import l2_normalize


def run(quick: bool) -> dict[str, Any]:
    repeat = 20 if quick else 200
    rng = np.random.default_rng(0)
    query = l2_normalize(rng.normal(size=128).astype(np.float32))
    model = ScoreModel.load()
    res: dict[str, Any] = {"machine": machine(), "per_query": {}, "per_gallery_change": {}}
    for n in ((1000, 10_000) if quick else (1000, 10_000, 100_000)):
        g = Gallery(l2_normalize(rng.normal(size=(n, 128)).astype(np.float32)), [f"p{i}" for i in range(n)])
        match = timeit(partial(g.match, query, 0.4), repeat)
        top2 = timeit(partial(g.top2, query), repeat)
        res["per_query"][f"{n}_people"] = {"match": match, "top2": top2,
                                           "top2_over_match": round(top2["median_ms"] / match["median_ms"], 2)}
        rows = l2_normalize(rng.normal(size=(3 * n, 128)).astype(np.float32))
        labels = [f"p{i // 3}" for i in range(3 * n)]
        res["per_gallery_change"][f"{n}_people"] = {
            "fuse_3_rows_per_person": timeit(partial(Gallery.from_rows, labels, rows), max(repeat // 20, 3)),
            "derive_threshold": timeit(partial(derive, model, n), max(repeat // 10, 5)),
        }
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    res = run(args.quick)
    for key, v in res["per_query"].items():
        print(f"{key:>15}: top2 {v['top2']['median_ms']:.3f} ms (min {v['top2']['min_ms']:.3f}), "
              f"match {v['match']['median_ms']:.3f} ms, ratio {v['top2_over_match']}")
    for key, v in res["per_gallery_change"].items():
        print(f"{key:>15}: fuse 3 rows/person {v['fuse_3_rows_per_person']['median_ms']:.1f} ms, "
              f"derive threshold {v['derive_threshold']['median_ms']:.2f} ms")
    save(res, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
