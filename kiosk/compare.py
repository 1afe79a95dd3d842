"""``kiosk compare A B``: are the largest faces in two photos the same person?"""

from __future__ import annotations

import argparse
import json

from kiosk.annotate import side_by_side, write_rgb
from kiosk.errors import ImageReadError
from kiosk.imageio import read_rgb
from kiosk.match import cosine, distance
from kiosk.vision.pipeline import build_pipeline


def run_compare(args: argparse.Namespace) -> int:
    images = [read_rgb(args.image_a), read_rgb(args.image_b)]  # bad input fails before models load
    pipeline, card = build_pipeline(args.model, detector=args.detector, runtime=args.runtime, threads=args.threads)
    threshold = card.threshold if args.threshold is None else args.threshold
    found = [pipeline.largest(rgb, str(path)) for rgb, path in zip(images, (args.image_a, args.image_b))]
    sim = cosine(found[0][1], found[1][1])
    same = sim >= threshold
    if args.out:
        verdict = f"{'SAME PERSON' if same else 'DIFFERENT PEOPLE'}  (threshold {100 * threshold:.2f}%)"
        canvas = side_by_side([(rgb, face) for rgb, (face, _) in zip(images, found)], sim, verdict)
        try:
            write_rgb(str(args.out), canvas)
        except OSError as exc:
            raise ImageReadError(str(exc)) from exc
    if args.json:
        faces = [{"image": str(p), **face.as_dict()} for p, (face, _) in zip((args.image_a, args.image_b), found)]
        print(json.dumps({"similarity": round(sim, 6), "distance": round(distance(sim), 6), "same": same,
                          "threshold": threshold, "faces": faces}))
    else:
        word = "same person" if same else "different people"
        print(f"{word}: similarity {100 * sim:.2f}% (threshold {100 * threshold:.2f}%)"
              + (f"; wrote {args.out}" if args.out else ""))
    return 0


__all__ = ["run_compare"]
