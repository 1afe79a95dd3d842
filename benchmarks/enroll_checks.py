"""How often the enrollment consistency check refuses good photo sets and catches mixed ones (LFW View 1).

    .venv/bin/python -m benchmarks.enroll_checks [--lfw ../shared/data/lfw-view1] [--sets 5000]

Good set: 3 photos of one person (people with 3+ photos). Mixed set: 2 photos
of one person and 1 of somebody else. Uses the cached embeddings of the
kiosk's int8 pipeline (kiosk.embedcache) and the shipped score table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from kiosk.datasets import identity_images
from kiosk.embedcache import embed_set
from kiosk.policy.openset import SAME_PERSON
from kiosk.policy.scoremodel import ScoreModel
from kiosk.policy.stats import format_rate
from kiosk.policy.templates import consistency, same_person_threshold
from kiosk.vision.pipeline import build_pipeline

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=Path, default=DATA / "lfw-view1")
    ap.add_argument("--sets", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    pipeline, card = build_pipeline()
    es = embed_set(pipeline, card.sha256, list(identity_images(args.lfw / "images")), "lfw-view1")
    labels, emb = es.kept()
    labels = [SAME_PERSON.get(x, x) for x in labels]
    by: dict[str, list[int]] = {}
    for i, x in enumerate(labels):
        by.setdefault(x, []).append(i)
    model = ScoreModel.load()
    rng = np.random.default_rng(args.seed)
    three = [p for p, v in by.items() if len(v) >= 3]
    two = [p for p, v in by.items() if len(v) >= 2]
    everyone = list(by)
    for q in (0.005, 0.01, 0.02):
        thr = same_person_threshold(model, q)
        good_refused = mixed_caught = 0
        for _ in range(args.sets):
            p = three[rng.integers(len(three))]
            rows = rng.choice(by[p], 3, replace=False)
            good_refused += not consistency(emb[rows], thr).ok
            a = two[rng.integers(len(two))]
            b = a
            while b == a:
                b = everyone[rng.integers(len(everyone))]
            rows = np.array([*rng.choice(by[a], 2, replace=False), rng.choice(by[b])])
            mixed_caught += not consistency(emb[rows], thr).ok
        print(f"quantile {q}: threshold {thr:.4f}; good 3-photo sets refused {format_rate(good_refused, args.sets)}; "
              f"mixed sets (2+1 people) caught {format_rate(mixed_caught, args.sets)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
