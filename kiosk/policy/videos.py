"""Multi-frame approaches from real clips (pure numpy over cached frame embeddings).

Each clip is cut in time: its first part enrolls the person (``k`` frames
spread over it, fused into one template), a gap follows, and its last part
is cut into windows of consecutive frames; each window is one approach whose
frames are fused (quality-weighted, as the door fuses a tracked face) into one
probe. The gallery holds the clips' people plus, to reach the gallery size,
templates of other people (fillers). The same windows, presented while their
person is left out of the gallery, are stranger approaches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from kiosk.policy.margin import Outcome, decide
from kiosk.policy.openset import Counts, top2
from kiosk.policy.scoremodel import ScoreModel
from kiosk.policy.templates import fuse
from kiosk.policy.threshold import derive

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Clip:
    name: str
    identity: str  # clips of the same person share it
    embeddings: F32  # frames that passed the quality gates, in time order
    weights: F64  # quality weight of each frame


@dataclass(frozen=True)
class Cut:
    enroll_frac: float = 0.4
    gap_frac: float = 0.2
    window: int = 15  # frames fused per approach
    min_window: int = 3  # a shorter tail of frames is not an approach


def enroll_rows(n: int, k: int, cut: Cut) -> list[int]:
    end = max(1, int(n * cut.enroll_frac))
    return sorted({int(round(x)) for x in np.linspace(0, end - 1, num=min(k, end))})


def windows(n: int, cut: Cut) -> list[list[int]]:
    start = int(n * (cut.enroll_frac + cut.gap_frac))
    rows = list(range(start, n))
    out = [rows[i:i + cut.window] for i in range(0, len(rows), cut.window)]
    return [w for w in out if len(w) >= cut.min_window]


def probes(clip: Clip, cut: Cut, whole: bool = False) -> F32:
    """Fused probes of the clip's windows (of the whole clip when it enrolls nobody)."""
    n = clip.embeddings.shape[0]
    ws = [list(range(i, min(i + cut.window, n))) for i in range(0, n, cut.window)] if whole else windows(n, cut)
    ws = [w for w in ws if len(w) >= cut.min_window]
    if not ws:
        return np.zeros((0, clip.embeddings.shape[1]), np.float32)
    return np.stack([fuse(clip.embeddings[w], clip.weights[w]) if len(w) <= 10 else
                     _fuse_many(clip.embeddings[w], clip.weights[w]) for w in ws])


def _fuse_many(e: F32, w: F64) -> F32:
    total = (w[:, None] * e.astype(np.float64)).sum(axis=0)
    return (total / np.linalg.norm(total)).astype(np.float32)


@dataclass
class VideoResult:
    n: int
    threshold: float
    enrolled_people: int
    counts: Counts
    tradeoff: list[dict[str, float]]
    per_clip: dict[str, dict[str, int]]

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "threshold": round(self.threshold, 4), "video_people_enrolled": self.enrolled_people,
                **self.counts.as_dict(), "per_clip": self.per_clip, "tradeoff": self.tradeoff}


def video_open_set(model: ScoreModel, clips: list[Clip], fillers: F32, sizes: list[int], k: int = 3,
                   target: float = 1e-4, margin: float = 0.05, cut: Cut | None = None, seed: int = 0,
                   targets: tuple[float, ...] = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)) -> list[VideoResult]:
    """Enrolled and stranger acceptance of multi-frame approaches, for each gallery size."""
    cut = cut or Cut()
    people: dict[str, F32] = {}
    for c in clips:  # the first clip of a person enrolls them; their other clips are probes only
        if c.identity not in people and c.embeddings.shape[0] >= 3:
            people[c.identity] = fuse(c.embeddings[enroll_rows(c.embeddings.shape[0], k, cut)])
    names = list(people)
    enrolling = {c.identity: c.name for c in reversed(clips) if c.identity in people}
    results = []
    for n in sizes:
        rng = np.random.default_rng(seed + n)
        chosen = names if n >= len(names) else [names[i] for i in sorted(rng.permutation(len(names))[:n])]
        n_fill = max(0, n - len(chosen))
        if n_fill > fillers.shape[0]:
            raise ValueError(f"{n_fill} filler templates needed, {fillers.shape[0]} given")
        gallery = np.concatenate([np.stack([people[p] for p in chosen]), fillers[:n_fill]])
        col = {p: i for i, p in enumerate(chosen)}
        rows: list[tuple[str, str, F32, bool]] = []  # clip, identity, probe, is_enrolled_approach
        for c in clips:
            enrolled = c.identity in col
            whole = not enrolled or enrolling.get(c.identity) != c.name  # never enrolled: every frame is a stranger
            for pr in probes(c, cut, whole=whole):
                rows.append((c.name, c.identity, pr, enrolled))
                if enrolled:  # the same approach with its person left out: a stranger approach
                    rows.append((c.name, c.identity, pr, False))
        if not rows:
            raise ValueError("no clip has enough frames for an approach")
        scores = np.stack([r[2] for r in rows]) @ gallery.T
        truth = np.full(len(rows), -1, np.int64)
        for i, (_, ident, _, enrolled) in enumerate(rows):
            if ident in col:
                if enrolled:
                    truth[i] = col[ident]
                else:
                    scores[i, col[ident]] = -2.0  # left out of the gallery
        best, s1, s2 = top2(scores)
        level = derive(model, n, target)
        counts = Counts()
        per_clip: dict[str, dict[str, int]] = {}
        for i, (name, _, _, _) in enumerate(rows):
            v = decide(str(best[i]), float(s1[i]), float(s2[i]), level.threshold, margin)
            pc = per_clip.setdefault(name, {"enrolled_n": 0, "enrolled_accepted": 0, "stranger_n": 0,
                                            "stranger_accepted": 0})
            if truth[i] >= 0:
                ok = v.granted and best[i] == truth[i]
                counts.enrolled_n += 1
                counts.enrolled_accepted += int(ok)
                counts.misidentified += int(v.granted and not ok)
                counts.ambiguous += int(v.outcome is Outcome.AMBIGUOUS)
                pc["enrolled_n"] += 1
                pc["enrolled_accepted"] += int(ok)
            else:
                counts.stranger_n += 1
                counts.stranger_accepted += int(v.granted)
                counts.stranger_ambiguous += int(v.outcome is Outcome.AMBIGUOUS)
                pc["stranger_n"] += 1
                pc["stranger_accepted"] += int(v.granted)
        trade = []
        for t in targets:
            thr = derive(model, n, t).threshold
            granted = (s1 >= thr) & ((s1 - s2) >= margin)
            gen = truth >= 0
            trade.append({"target": t, "threshold": round(thr, 4),
                          "enrolled_acceptance": float((granted & gen & (best == truth)).sum() / max(gen.sum(), 1)),
                          "stranger_acceptance": float((granted & ~gen).sum() / max((~gen).sum(), 1)),
                          "stranger_n": int((~gen).sum()), "enrolled_n": int(gen.sum())})
        results.append(VideoResult(n, level.threshold, len(chosen), counts, trade, per_clip))
    return results
