"""Recompute kiosk/policy/score_table.json: the impostor and genuine score model of the int8 pipeline.

    .venv/bin/python -m benchmarks.score_model [--out kiosk/policy/score_table.json]
        [--lfw ../shared/data/lfw-view1] [--johns ../shared/data/johns] [--people peopleDevTrain.txt]

Run it whenever the embedder or the crop convention changes, then
``kiosk-convert --attach-score-table`` to put the table's summary and
provenance into the model card (the model file is not touched). Every
photo is embedded once with the kiosk's own pipeline
(``kiosk.vision.pipeline.build_pipeline``: BlazeFace, the kiosk's aligner,
the int8 FaceNet) and cached outside the project, keyed by the model's
sha256 and crop convention (``$KIOSK_EVAL_CACHE``, default
``~/.cache/kiosk-eval``). The table holds numbers only: counts of pairs at or
above each cosine on a grid, never an image or an embedding.

Sets: LFW View 1 (deep-funneled, ``lfw-view1/images``), ``johns`` and the
de-duplicated 5-celebrity set. Pairs are formed within each set only (the
sets share some people, e.g. 5-celebrity and LFW both hold Ben Affleck).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import subprocess
import sys
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from kiosk.artifacts import dataset_path
from kiosk.datasets import identity_images
from kiosk.embedcache import EmbeddedSet, default_cache_dir, embed_set
from kiosk.policy.openset import SAME_PERSON
from kiosk.policy.scoremodel import TABLE_PATH, ScoreModel
from kiosk.policy.templates import fuse
from kiosk.vision.pipeline import build_pipeline

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
GRID = np.round(np.arange(-0.2, 1.0 + 1e-9, 0.0025), 4)
QUANTILES = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
TEMPLATE_PHOTOS = 3
TEMPLATES_PER_PERSON = 3  # impostor templates drawn per person with >= 3 photos
SUBSETS_PER_PROBE = 10  # genuine: 3-photo templates drawn per held-out probe
F32 = npt.NDArray[np.float32]
# LFW files some people under two names (kiosk.policy.openset.SAME_PERSON); their pairs are genuine, not
# impostor. Other high-scoring impostor pairs are different people, or group photos whose primary face is
# someone else, and stay in the impostor counts.


class Counter:
    """Counts of scores at or above each grid threshold, accumulated in blocks."""

    def __init__(self) -> None:
        self.hist = np.zeros(GRID.size, np.int64)
        self.pairs = 0
        self.samples: list[F32] = []  # kept only for genuine curves (small), for quantiles
        self.top: list[float] = []

    def add(self, scores: F32, keep: bool = False) -> None:
        scores = np.asarray(scores, np.float32).reshape(-1)
        self.pairs += scores.size
        idx = np.searchsorted(GRID, scores, side="right") - 1
        idx = idx[idx >= 0]
        self.hist += np.bincount(idx, minlength=GRID.size)
        if keep:
            self.samples.append(scores)
        if scores.size:
            self.top = sorted([*self.top, *np.sort(scores)[-5:].tolist()])[-5:]

    def curve(self, quantiles: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"pairs": int(self.pairs), "at_or_above": np.cumsum(self.hist[::-1])[::-1].tolist()}
        if quantiles and self.samples:
            s = np.concatenate(self.samples)
            out["quantiles"] = {f"{q:g}": round(float(np.quantile(s, q)), 4) for q in QUANTILES}
        else:
            out["highest"] = [round(v, 4) for v in self.top]
        return out


def by_person(labels: list[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        out.setdefault(label, []).append(i)
    return out


def single_pairs(emb: F32, labels: list[str], imp: Counter, gen: Counter, block: int = 512) -> tuple[int, int]:
    lab = np.asarray(labels)
    n_imp = n_gen = 0
    for start in range(0, len(labels), block):
        rows = emb[start:start + block] @ emb.T  # (b, n)
        for r in range(rows.shape[0]):
            i = start + r
            s = rows[r, i + 1:]
            same = lab[i + 1:] == lab[i]
            imp.add(s[~same])
            gen.add(s[same], keep=True)
            n_imp += int((~same).sum())
            n_gen += int(same.sum())
    return n_imp, n_gen


def template_pairs(emb: F32, labels: list[str], imp: Counter, gen: Counter, rng: np.random.Generator) -> dict[str, int]:
    people = by_person(labels)
    lab = np.asarray(labels)
    n_templates = n_gen = 0
    for person, idx in people.items():
        if len(idx) < TEMPLATE_PHOTOS:
            continue
        subsets = list(combinations(idx, TEMPLATE_PHOTOS))
        for k in rng.permutation(len(subsets))[:TEMPLATES_PER_PERSON]:
            t = fuse(emb[list(subsets[k])])
            imp.add((emb @ t)[lab != person])
            n_templates += 1
        if len(idx) < TEMPLATE_PHOTOS + 1:
            continue
        for probe in idx:
            rest = [i for i in idx if i != probe]
            subs = list(combinations(rest, TEMPLATE_PHOTOS))
            picks = [subs[k] for k in rng.permutation(len(subs))[:SUBSETS_PER_PROBE]]
            templates = np.stack([fuse(emb[list(s)]) for s in picks])
            gen.add(templates @ emb[probe], keep=True)
            n_gen += len(picks)
    return {"impostor_templates": n_templates, "genuine_template_probe_pairs": n_gen}


def shown(path: Path) -> str:
    """A data folder as the project sees it (relative to the checkout), never this machine's absolute layout."""
    p = path.resolve()
    for base, prefix in ((ROOT, ""), (ROOT.parent, "../")):
        if p.is_relative_to(base):
            return prefix + str(p.relative_to(base))
    return path.name


def git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def build(sets: list[tuple[str, Path, set[str] | None]], seed: int = 0) -> dict[str, Any]:
    pipeline, card = build_pipeline()
    rng = np.random.default_rng(seed)
    imp1, gen1, imp3, gen3 = Counter(), Counter(), Counter(), Counter()
    prov_sets = []
    for name, root, people in sets:
        items = [(label, p) for label, p in identity_images(root) if people is None or label in people]
        es: EmbeddedSet = embed_set(pipeline, card.sha256, items, name)
        labels, emb = es.kept()
        labels = [SAME_PERSON.get(label, label) for label in labels]
        n_imp, n_gen = single_pairs(emb, labels, imp1, gen1)
        t = template_pairs(emb, labels, imp3, gen3, rng)
        per = by_person(labels)
        prov_sets.append({
            "name": name, "folder": shown(root), "people": len(per), "photos": len(items),
            "photos_with_face": len(labels), "people_with_3_photos": sum(len(v) >= 3 for v in per.values()),
            "people_with_4_photos": sum(len(v) >= 4 for v in per.values()),
            "impostor_photo_pairs": n_imp, "genuine_photo_pairs": n_gen, **t,
        })
        print(f"{name}: {len(labels)} photos of {len(per)} people, {n_imp:,} impostor and {n_gen:,} genuine pairs",
              file=sys.stderr)
    table: dict[str, Any] = {
        "format": 1,
        "score": "cosine similarity of L2-normalised int8 FaceNet embeddings",
        "description": "counts of pairs scoring at or above each cosine; impostor = different people, genuine = same "
                       "person; single = photo vs photo; template3 = fused template of 3 photos vs one photo "
                       "(held out, for genuine)",
        "cosine": GRID.tolist(),
        "impostor": {"single": imp1.curve(), "template3": imp3.curve()},
        "genuine": {"single": gen1.curve(True), "template3": gen3.curve(True)},
        "provenance": {
            "sets": prov_sets,
            "model": card.data.get("model"), "model_sha256": card.sha256,
            "alignment": card.data.get("preprocessing", {}).get("align"),
            "detector": "BlazeFace full range, short range as fallback (kiosk.vision.pipeline, detector=auto)",
            "pairs_within_sets_only": True,
            "same_person_under_two_names": {k: v for k, v in SAME_PERSON.items() if not k.isdigit()},
            "template_photos": TEMPLATE_PHOTOS, "templates_per_person": TEMPLATES_PER_PERSON,
            "subsets_per_probe": SUBSETS_PER_PROBE, "seed": seed,
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": "python -m benchmarks.score_model " + " ".join(sys.argv[1:]),
            "code_revision": git_revision(),
        },
    }
    table["summary"] = ScoreModel(table).summary()
    return table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=TABLE_PATH)
    ap.add_argument("--lfw", type=Path, default=DATA / "lfw-view1")
    ap.add_argument("--johns", type=Path, default=DATA / "johns")
    ap.add_argument("--people", type=Path, help="LFW people list (e.g. peopleDevTrain.txt): use only these people")
    ap.add_argument("--lfw-only", action="store_true", help="leave out johns and 5-celebrity")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    people = None
    if args.people:
        lines = args.people.read_text().split("\n")[1:]
        people = {ln.split("\t")[0] for ln in lines if ln.strip()}
    sets: list[tuple[str, Path, set[str] | None]] = [
        ("lfw-view1" + (f"[{args.people.name}]" if args.people else ""), args.lfw / "images", people)]
    if not args.lfw_only:
        sets += [("johns", args.johns, None), ("5-celebrity", dataset_path("5-celebrity"), None)]
    table = build(sets, args.seed)
    args.out.write_text(json.dumps(table, indent=1) + "\n")
    s = table["summary"]
    print(f"wrote {args.out} (cache {default_cache_dir()})")
    for far, v in s["threshold_for_far"].items():
        print(f"  FAR {far:>6} per comparison: cosine {v['cosine']:.4f} ({'measured' if v['measured'] else 'extrapolated'}),"
              f" TAR template3 {100 * v['tar_template3']:.1f}%, single {100 * v['tar_single']:.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
