"""Open-set evaluation on embeddings (pure numpy): enroll N people, present enrolled people and strangers.

Every approach goes through the door's rule: the threshold derived for the
gallery size (``kiosk.policy.threshold.derive``) and the top-2 margin rule
(``kiosk.policy.margin``). A stranger approach is a photo (or a fused run of
frames) of somebody never enrolled; it counts as accepted if it is granted
as anybody. An enrolled approach is a photo of an enrolled person that was
not used for enrollment; it counts as accepted only if granted as that
person (a grant to somebody else is counted apart, as a misidentification).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from kiosk.policy.scoremodel import ScoreModel
from kiosk.policy.stats import clopper_pearson
from kiosk.policy.templates import fuse
from kiosk.policy.threshold import derive

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

# People the shared data files under two names (label -> the name used): LFW's duplicates found among the
# highest-scoring "impostor" pairs, and a clip whose person is another clip's (shared/data/README.md).
SAME_PERSON = {"Sung_Hong_Choi": "Choi_Sung-hong", "Hassan_Wirajuda": "Hasan_Wirayuda", "Sepp_Blatter": "Joseph_Blatter",
               "3": "WDA_AlexandriaOcasioCortez_000"}


@dataclass(frozen=True)
class Split:
    """Who is enrolled with which photos, which photos probe them, which photos are strangers."""

    people: list[str]  # enrolled, one template each
    template_rows: list[list[int]]  # photo indices fused into each template
    probe_rows: I64  # held-out photos of enrolled people
    probe_person: I64  # index into ``people`` of each probe
    stranger_rows: I64  # every photo of every never-enrolled person
    note: str = ""

    def photos_per_template(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for rows in self.template_rows:
            out[len(rows)] = out.get(len(rows), 0) + 1
        return dict(sorted(out.items(), reverse=True))


def split(labels: list[str], n: int, k: int, rng: np.random.Generator) -> Split:
    """Enroll ``n`` people with ``k`` photos each, keeping at least one photo per person to probe with.

    People with at least k+1 photos are drawn first; when they run out, people
    with fewer photos are enrolled with all but one of theirs (at least one),
    and the shortfall is stated in ``note``. Everyone not drawn is a stranger.
    """
    by: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by.setdefault(label, []).append(i)
    full = [p for p, rows in by.items() if len(rows) >= k + 1]
    partial = [p for p, rows in by.items() if 2 <= len(rows) < k + 1]
    if n > len(full) + len(partial):
        raise ValueError(f"{n} people to enroll but only {len(full) + len(partial)} have two or more photos")
    chosen = [full[i] for i in rng.permutation(len(full))[:n]]
    note = ""
    if len(chosen) < n:
        partial.sort(key=lambda p: (-len(by[p]), p))
        extra = partial[: n - len(chosen)]
        note = (f"only {len(full)} people have {k + 1}+ photos; {len(extra)} more are enrolled with fewer photos "
                "(all but one of theirs)")
        chosen += extra
    templates, probes, owner = [], [], []
    for j, person in enumerate(chosen):
        rows = [by[person][i] for i in rng.permutation(len(by[person]))]
        take = min(k, len(rows) - 1)
        templates.append(sorted(rows[:take]))
        probes += rows[take:]
        owner += [j] * (len(rows) - take)
    enrolled = set(chosen)
    strangers = [i for i, label in enumerate(labels) if label not in enrolled]
    return Split(chosen, templates, np.asarray(probes, np.int64), np.asarray(owner, np.int64),
                 np.asarray(strangers, np.int64), note)


def top2(scores: F32) -> tuple[I64, F32, F32]:
    """Per row of a (probes, people) score matrix: best column, best score, second-best score."""
    if scores.shape[1] == 1:
        return np.zeros(scores.shape[0], np.int64), scores[:, 0].copy(), np.full(scores.shape[0], -1.0, np.float32)
    part = np.argpartition(-scores, 1, axis=1)[:, :2]
    a, b = part[:, 0], part[:, 1]
    rows = np.arange(scores.shape[0])
    sa, sb = scores[rows, a], scores[rows, b]
    swap = sb > sa
    best = np.where(swap, b, a)
    return best.astype(np.int64), np.maximum(sa, sb), np.minimum(sa, sb)


@dataclass(frozen=True)
class Scored:
    """Best/second scores of every approach against a gallery, so many thresholds cost nothing."""

    best_person: I64
    best: F32
    second: F32
    truth: I64  # index of the true enrolled person, -1 for a stranger


def score(gallery: F32, probes: F32, truth: I64) -> Scored:
    b, s1, s2 = top2(np.asarray(probes, np.float32) @ np.asarray(gallery, np.float32).T)
    return Scored(b, s1, s2, np.asarray(truth, np.int64))


@dataclass
class Counts:
    stranger_n: int = 0
    stranger_accepted: int = 0
    enrolled_n: int = 0
    enrolled_accepted: int = 0
    misidentified: int = 0  # enrolled approaches granted as somebody else
    ambiguous: int = 0  # enrolled approaches refused by the margin rule
    stranger_ambiguous: int = 0

    def add(self, other: Counts) -> None:
        for k in self.__dict__:
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.__dict__)
        if self.stranger_n:
            lo, hi = clopper_pearson(self.stranger_accepted, self.stranger_n)
            out["stranger_acceptance"] = {"rate": self.stranger_accepted / self.stranger_n, "ci95": [lo, hi]}
        if self.enrolled_n:
            lo, hi = clopper_pearson(self.enrolled_accepted, self.enrolled_n)
            out["enrolled_acceptance"] = {"rate": self.enrolled_accepted / self.enrolled_n, "ci95": [lo, hi]}
        return out


def count(s: Scored, threshold: float, margin: float) -> Counts:
    """Outcomes of every approach under the rule: best >= threshold and best - second >= margin."""
    over = s.best >= threshold
    clear = (s.best - s.second) >= margin
    granted = over & clear
    stranger = s.truth < 0
    right = s.best_person == s.truth
    return Counts(
        stranger_n=int(stranger.sum()), stranger_accepted=int((granted & stranger).sum()),
        enrolled_n=int((~stranger).sum()), enrolled_accepted=int((granted & ~stranger & right).sum()),
        misidentified=int((granted & ~stranger & ~right).sum()), ambiguous=int((over & ~clear & ~stranger).sum()),
        stranger_ambiguous=int((over & ~clear & stranger).sum()))


@dataclass
class SizeResult:
    n: int
    threshold: float
    far_per_comparison: float
    extrapolated: bool
    expected_tar: float
    counts: Counts
    photos_per_template: dict[int, int]
    note: str
    tradeoff: list[dict[str, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "threshold": round(self.threshold, 4), "far_per_comparison": self.far_per_comparison,
                "threshold_extrapolated": self.extrapolated, "expected_tar": round(self.expected_tar, 4),
                "photos_per_template": {str(k): v for k, v in self.photos_per_template.items()},
                "note": self.note, **self.counts.as_dict(), "tradeoff": self.tradeoff}


TRADEOFF_TARGETS = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 1e-6)


def tradeoff(model: ScoreModel, scored: list[Scored], n: int, margin: float,
             targets: tuple[float, ...] = TRADEOFF_TARGETS) -> list[dict[str, float]]:
    """Measured stranger and enrolled acceptance at the thresholds derived for a range of levels."""
    out = []
    for target in targets:
        level = derive(model, n, target)
        c = Counts()
        for s in scored:
            c.add(count(s, level.threshold, margin))
        out.append({"target": target, "threshold": round(level.threshold, 4),
                    "stranger_acceptance": c.stranger_accepted / max(c.stranger_n, 1),
                    "stranger_accepted": c.stranger_accepted, "stranger_n": c.stranger_n,
                    "enrolled_acceptance": c.enrolled_accepted / max(c.enrolled_n, 1), "enrolled_n": c.enrolled_n})
    return out


def open_set(model: ScoreModel, labels: list[str], emb: F32, sizes: list[int], k: int = 3,
             target: float = 1e-4, margin: float = 0.05, repeats: int = 1, seed: int = 0) -> list[SizeResult]:
    """The open-set table: for each gallery size, ``repeats`` random draws pooled."""
    emb = np.asarray(emb, np.float32)
    results = []
    for n in sizes:
        rng = np.random.default_rng(seed + n)
        level = derive(model, n, target)
        counts = Counts()
        scored: list[Scored] = []
        per_template: dict[int, int] = {}
        note = ""
        for _ in range(repeats):
            sp = split(labels, n, k, rng)
            note = sp.note
            for kk, v in sp.photos_per_template().items():
                per_template[kk] = per_template.get(kk, 0) + v
            gallery = np.stack([fuse(emb[rows]) for rows in sp.template_rows])
            rows = np.concatenate([sp.probe_rows, sp.stranger_rows])
            truth = np.concatenate([sp.probe_person, np.full(sp.stranger_rows.size, -1, np.int64)])
            s = score(gallery, emb[rows], truth)
            scored.append(s)
            counts.add(count(s, level.threshold, margin))
        results.append(SizeResult(n, level.threshold, level.far_per_comparison, level.extrapolated,
                                  level.expected_tar, counts, per_template, note,
                                  tradeoff(model, scored, n, margin)))
    return results
