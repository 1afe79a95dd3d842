"""``kiosk pad eval``: every presentation through the real loop, rates per PAI species (ISO/IEC 30107-3)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from kiosk.errors import ConfigError, DatasetError, KioskError, OutputError
from kiosk.pad.meta import BONA_FIDE, META, SPECIES
from kiosk.pad.metrics import clopper_pearson, percentiles, rate
from kiosk.pad.present import Outcome, Presentation, PresentConfig, Presenter, from_folder, from_video
from kiosk.pad.rate import SlowerSource
from kiosk.pad.video import RAW_STREAMS, VIDEO_SUFFIXES, find_videos
from kiosk.progress import Progress

logger = logging.getLogger(__name__)

LIVENESS_OFF = ("liveness is off in this configuration: no presentation gets a liveness verdict, so every APCER "
                "is 0 by construction; read the door-opened rate (IAPAR)")


def sequence_folders(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.rglob(META))


def collect(bona_fide: Iterable[Path], attacks: Iterable[Path], fps: float = 15.0,
            max_seconds: float | None = None) -> list[Presentation]:
    """Bona fide: video files (searched recursively) and sequence folders; attacks: folders from ``pad render``.
    A clip or sequence reached through more than one of the folders given (the same folder twice, or a
    folder and one inside it) is presented once: counted twice it would narrow the intervals falsely."""
    out: list[Presentation] = []
    seen: set[Path] = set()
    repeated: list[Path] = []

    def first_time(path: Path) -> bool:
        key = path.resolve()
        if key in seen:
            repeated.append(path)
            return False
        seen.add(key)
        return True

    for root in bona_fide:
        if not root.exists():
            raise DatasetError(f"--bona-fide {root} does not exist")
        refuse_raw_streams(root)
        videos = find_videos(root)
        folders = sequence_folders(root) if root.is_dir() else []
        if not videos and not folders:
            raise DatasetError(f"--bona-fide {root}: no video files and no sequence folders with {META} "
                               f"(videos: {', '.join(sorted(VIDEO_SUFFIXES))})")
        warn_unused(root, videos, folders)
        found = [from_video(v, fps, max_seconds) for v in videos if first_time(v)]
        for folder in folders:
            if not first_time(folder):
                continue
            p = from_folder(folder)
            if p.attack:
                raise DatasetError(f"{folder} is a {p.species} attack, listed under --bona-fide; move it to --attacks")
            found.append(p)
        out += found
    for root in attacks:
        if not root.is_dir():
            raise DatasetError(f"--attacks {root} is not a folder")
        folders = sequence_folders(root)
        unfinished = sorted({f.parent for f in root.rglob("frame_*.jpg")} - set(folders))
        if unfinished:
            raise DatasetError(f"--attacks {root}: {len(unfinished)} folder(s) hold frames but no {META} "
                               f"(an interrupted render), e.g. {unfinished[0]}: run the same render again to "
                               "finish them, or remove them")
        if not folders:
            raise DatasetError(f"--attacks {root}: no sequence folders with {META}; make them with `kiosk pad render`")
        for folder in folders:
            if not first_time(folder):
                continue
            p = from_folder(folder)
            if not p.attack:
                raise DatasetError(f"{folder} is bona fide, listed under --attacks; move it to --bona-fide")
            out.append(p)
    if repeated:
        logger.warning("%d presentation(s) reached through more than one of the folders given, presented once: %s",
                       len(repeated), _some(repeated))
    return out


def refuse_raw_streams(root: Path) -> None:
    """A raw H.264/H.265 stream has no container: no frame rate or length to split it at (80 % presented,
    the rest enrolled), so it is refused by name rather than read at a guessed rate or skipped."""
    raw = [root] if root.is_file() and root.suffix.lower() in RAW_STREAMS else (
        sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in RAW_STREAMS) if root.is_dir() else [])
    if raw:
        raise DatasetError(f"--bona-fide {root}: {len(raw)} raw video stream(s) without a container, e.g. {raw[0]}: "
                           "the frame rate and length are unknown; put each in a container "
                           f"(`ffmpeg -framerate 15 -i {raw[0].name} -c copy {raw[0].stem}.mp4`) or record with "
                           "`rpicam-vid --codec libav -o attempt.mp4`")


def warn_unused(root: Path, videos: list[Path], folders: list[Path]) -> None:
    """Name the files under a --bona-fide folder that are neither a video nor part of a sequence folder."""
    if not root.is_dir():
        if not videos:
            logger.warning("--bona-fide %s: not a video file (%s), skipped", root, ", ".join(sorted(VIDEO_SUFFIXES)))
        return
    used = set(folders)
    unused = sorted(p for p in root.rglob("*") if p.is_file() and p not in videos and p.parent not in used)
    if unused:
        logger.warning("--bona-fide %s: %d file(s) neither a video (%s) nor in a sequence folder, skipped: %s",
                       root, len(unused), ", ".join(sorted(VIDEO_SUFFIXES)), _some(unused))


def _some(paths: list[Path], n: int = 5) -> str:
    return ", ".join(str(p) for p in paths[:n]) + (f" and {len(paths) - n} more" if len(paths) > n else "")


def run_all(presenter: Presenter, presentations: list[Presentation],
            progress: Callable[[int], None] | None = None, fps: float | None = None,
            outcomes: list[Outcome] | None = None) -> list[Outcome]:
    """Each presentation through the loop; with ``fps`` below its own rate, as a slower door's loop
    gets it (``kiosk.pad.rate.SlowerSource``). ``outcomes`` is filled as the run goes, so that a run
    interrupted (Ctrl-C) still holds what was presented."""
    outcomes = [] if outcomes is None else outcomes
    for n, p in enumerate(presentations, start=1):
        try:
            outcomes.append(presenter.present(p, _slower(fps, p.fps)))
        except KioskError as exc:
            logger.warning("%s: not presented: %s", p.name, exc)
            outcomes.append(Outcome(p.name, p.species, p.subject, p.attack, 0, error=str(exc)))
        if progress is not None:
            progress(n)
    return outcomes


def _slower(fps: float | None, recorded: float) -> Callable[[Any], Any] | None:
    if fps is None or fps >= recorded:
        return None
    return lambda source: SlowerSource(source, fps, recorded)


def _times(outcomes: list[Outcome]) -> dict[str, Any]:
    return {"time_to_verdict_s": percentiles([o.time_to_verdict_s for o in outcomes if o.time_to_verdict_s is not None]),
            "time_to_grant_s": percentiles([o.time_to_grant_s for o in outcomes if o.time_to_grant_s is not None])}


def passive_verdict(o: Outcome) -> bool:
    """A verdict reached without a challenge."""
    return o.verdict != "none" and not o.challenged


def summarise(outcomes: list[Outcome]) -> dict[str, Any]:
    """Per species: APCER (liveness said live), IAPAR (the door opened), APNRR (no verdict without a challenge),
    attacks denied as presentation attacks; for bona fide: BPCER (a flat verdict without a challenge), BPNRR
    (no verdict without a challenge: a recording cannot answer a prompt), grants and time to grant."""
    done = [o for o in outcomes if o.error is None]
    species: dict[str, Any] = {}
    for sp in [s for s in SPECIES if any(o.species == s for o in done)] + sorted(
            {o.species for o in done if o.attack and o.species not in SPECIES}):
        group = [o for o in done if o.species == sp]
        species[sp] = {
            "n": len(group), "subjects": len({o.subject for o in group}),
            "apcer": rate([o.verdict == "live" for o in group]).as_dict(),
            "iapar": rate([o.door_opened for o in group]).as_dict(),
            "apnrr": rate([not passive_verdict(o) for o in group]).as_dict(),
            "denied_presentation_attack": rate([o.denied_attack for o in group]).as_dict(),
            "no_verdict_at_all": rate([o.verdict == "none" for o in group]).as_dict(),
            "recognisable": rate([o.usable_frames > 0 for o in group]).as_dict(),  # passed the quality gates once
            **_times(group),
        }
    bona = [o for o in done if not o.attack]
    bona_fide: dict[str, Any] = {}
    if bona:
        bona_fide = {
            "n": len(bona), "subjects": len({o.subject for o in bona}),
            "bpcer": rate([o.verdict == "flat" and not o.challenged for o in bona]).as_dict(),
            "bpnrr": rate([not passive_verdict(o) for o in bona]).as_dict(),
            "granted": rate([o.granted for o in bona]).as_dict(),
            "recognisable": rate([o.usable_frames > 0 for o in bona]).as_dict(),
            "denied_presentation_attack": rate([o.denied_attack for o in bona]).as_dict(),
            **_times(bona),
            "per_clip": [{"name": o.name, "verdict": o.verdict, "challenged": o.challenged,
                          "non_response": not passive_verdict(o), "time_to_verdict_s": o.time_to_verdict_s,
                          "granted": o.granted, "time_to_grant_s": o.time_to_grant_s, "usable_frames": o.usable_frames,
                          "reason": o.verdict_reason} for o in bona],
        }
    return {"species": species, "bona_fide": bona_fide,
            "errors": [{"name": o.name, "error": o.error} for o in outcomes if o.error is not None]}


def _rate_text(d: dict[str, Any]) -> str:
    if not d["n"]:
        return "n/a"
    lo, hi = clopper_pearson(d["k"], d["n"])
    return f"{100 * d['k'] / d['n']:5.1f} % [{100 * lo:4.1f}, {100 * hi:5.1f}]"


def table(summary: dict[str, Any]) -> str:
    """The summary as text: one row per species, then bona fide, then the per-clip non-responses."""
    head = f"{'species':<14} {'n':>4} {'people':>6}  {'APCER (95 % CI)':<24} {'door opened (IAPAR)':<24} " \
           f"{'no passive verdict':<24} {'verdict s (med/p90)':<18}"
    lines = [head, "-" * len(head)]
    for sp, r in summary["species"].items():
        tv = r["time_to_verdict_s"]
        lines.append(f"{sp:<14} {r['n']:>4} {r['subjects']:>6}  {_rate_text(r['apcer']):<24} "
                     f"{_rate_text(r['iapar']):<24} {_rate_text(r['apnrr']):<24} "
                     f"{tv['median'] if tv['n'] else '-'}/{tv['p90'] if tv['n'] else '-'}")
    b = summary["bona_fide"]
    if b:
        tv, tg = b["time_to_verdict_s"], b["time_to_grant_s"]
        lines += ["", f"bona fide: {b['n']} presentations of {b['subjects']} subjects",
                  f"  BPCER (flat without a challenge)   {_rate_text(b['bpcer'])}",
                  f"  BPNRR (no verdict without a challenge) {_rate_text(b['bpnrr'])}",
                  f"  granted                            {_rate_text(b['granted'])}",
                  f"  time to verdict  median {tv['median']} s, p90 {tv['p90']} s (n={tv['n']})",
                  f"  first usable frame to grant  median {tg['median']} s, p90 {tg['p90']} s (n={tg['n']})",
                  "", f"  {'clip':<60} {'verdict':<8} {'challenged':<10} {'non-response':<12} {'grant s':>7}"]
        for c in b["per_clip"]:
            name = c["name"] if len(c["name"]) <= 60 else "..." + c["name"][-57:]
            lines.append(f"  {name:<60} {c['verdict']:<8} {c['challenged']!s:<10} {c['non_response']!s:<12} "
                         f"{c['time_to_grant_s'] if c['time_to_grant_s'] is not None else '-':>7}")
    if summary["errors"]:
        lines += ["", f"{len(summary['errors'])} presentations could not be run:"]
        lines += [f"  {e['name']}: {e['error']}" for e in summary["errors"]]
    return "\n".join(lines)


def present_config(settings: Any, max_seconds: float) -> PresentConfig:
    """The door's decision, quality and liveness configuration (defaults when no file is given)."""
    from kiosk.liveness.settings import LivenessSettings
    from kiosk.service import decision_config
    from kiosk.vision.quality import QualityConfig

    liveness = getattr(settings, "liveness", None) or LivenessSettings()
    on = liveness.mode != "off"
    q = settings.quality
    return PresentConfig(decision_config(settings, liveness=on),
                         QualityConfig(q.min_face_px, q.min_sharpness, q.max_outside, q.max_yaw),
                         liveness if on else None, max_seconds, settings.door.unlock_s)


def run_pad_eval(args: argparse.Namespace) -> int:
    from kiosk.config import load_settings
    from kiosk.vision.pipeline import build_pipeline

    if not args.bona_fide and not args.attacks:
        raise DatasetError("nothing to evaluate: give --bona-fide DIR and/or --attacks DIR")
    if args.plot is not None:
        check_plot_path(args.plot)  # before the run, not after it: a bad path must not cost the results
    settings = load_settings(args.config)
    config = present_config(settings, args.max_seconds)
    if config.liveness is None:
        logger.warning(LIVENESS_OFF)
    presentations = collect(args.bona_fide or [], args.attacks or [], max_seconds=args.max_seconds)
    if args.limit:
        presentations = limit_per_group(presentations, args.limit)
    v = settings.vision
    pipeline, card = build_pipeline(args.model or v.model, detector=args.detector or v.detector, runtime=args.runtime,
                                    threads=args.threads)
    landmarker = None
    if config.liveness is not None:
        from kiosk.liveness.landmarks import build_landmarker

        landmarker = build_landmarker(runtime=args.runtime, threads=args.threads)
    threshold = card.threshold if v.threshold is None else v.threshold
    outcomes: list[Outcome] = []
    interrupted = False
    try:
        run_all(Presenter(pipeline, threshold, config, landmarker), presentations,
                Progress(len(presentations), "presenting"), fps=args.fps, outcomes=outcomes)
    except KeyboardInterrupt:
        interrupted = True
    summary = summarise(outcomes)
    report = {"summary": summary, "max_seconds": args.max_seconds, "fps": args.fps,
              **({"warning": LIVENESS_OFF} if config.liveness is None else {}),
              **({"interrupted": {"presented": len(outcomes), "of": len(presentations)}} if interrupted else {}),
              "liveness": None if config.liveness is None else config.liveness.model_dump(mode="json"),
              "presentations": [o.as_dict() for o in outcomes]}
    cut_short = f"interrupted after {len(outcomes)} of {len(presentations)} presentations: the rates cover only those"
    unwritten = emit(json.dumps(report) if args.json else (
        (LIVENESS_OFF + "\n\n" if config.liveness is None else "") + (cut_short + "\n\n" if interrupted else "")
        + table(summary)))
    rc = 0
    if args.plot and interrupted:
        logger.warning("--plot %s: not written, the run was interrupted", args.plot)
    elif args.plot:  # after the results are out: a plot that fails costs only the plot
        from kiosk.pad.plot import plot_flatness

        try:
            plot_flatness(outcomes, config.liveness, args.plot)
        except (OSError, ValueError, KioskError) as exc:
            logger.error("--plot %s: not written (%s)%s", args.plot, exc,
                         "" if unwritten else "; the results above are complete")
            rc = 1
        else:
            logger.info("wrote %s", args.plot)
    failed = len(summary["errors"])
    if failed:
        logger.error("%d of %d presentations could not be run (listed with the results)", failed, len(outcomes))
        rc = 1
    if unwritten is not None:
        raise unwritten
    if interrupted:
        logger.error(cut_short)
        return 130
    return rc


def emit(text: str) -> OutputError | None:
    """Print the results; when standard output cannot take them (closed, disk full) the error to raise
    once the plot has had its chance, and standard output pointed at /dev/null so that the text still
    buffered is not tried again at exit."""
    try:
        print(text, flush=True)
    except OSError as exc:
        with contextlib.suppress(OSError, ValueError):  # not a real file (a test's capture): nothing to flush
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OutputError(f"the results could not be written to standard output ({exc.strerror or exc})")
    return None


def check_plot_path(path: Path) -> None:
    """``--plot`` must name a new or existing PNG file in an existing, writable folder."""
    if path.suffix.lower() != ".png":
        raise ConfigError(f"--plot {path}: the plot is a PNG; give a file name ending in .png")
    if path.is_dir():
        raise ConfigError(f"--plot {path} is a folder; give a file name ending in .png")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError(f"--plot {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"--plot {path}: cannot write there")


def limit_per_group(presentations: list[Presentation], n: int) -> list[Presentation]:
    """The first ``n`` presentations of each species (and of bona fide)."""
    seen: dict[str, int] = {}
    out = []
    for p in presentations:
        seen[p.species] = seen.get(p.species, 0) + 1
        if seen[p.species] <= n:
            out.append(p)
    return out


__all__ = ["BONA_FIDE", "collect", "run_all", "run_pad_eval", "summarise", "table"]
