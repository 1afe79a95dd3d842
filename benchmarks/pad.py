"""The presentation-attack self-test, measured: render attacks from LFW, replay them and the real clips
through the real loop, print the ISO/IEC 30107-3 table and write docs/pad_results.json.

    .venv/bin/python -m benchmarks.pad [--quick] [--work DIR] [--json docs/pad_results.json] [--plot PNG]
    .venv/bin/python -m benchmarks.pad --seed S --work DIR --render-only   # then: kiosk pad eval --attacks DIR/attacks/...

Attack species: 60 sequences each of print_still, print_turned, print_bent, phone_photo and print_folded from 10 LFW
people (lfw-view1; one photo rendered, the person's other photos enrolled), and tablet_video, two per real
clip (the first 80 % of the clip played on a tablet, enrolled from its last 20 %). Bona fide: the 25 real
clips in ../shared/data/videos (first 80 % presented, last 20 % enrolled). Every presentation goes through
``KioskLoop`` with the default configuration (liveness in challenge mode) and a mock relay. Rendered
sequences are kept in --work (a temporary folder by default) and re-used when present; nothing made from
the data is written into the repository except the figures in the JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.machine import machine
from kiosk.pad.eval import collect, present_config, run_all, summarise, table
from kiosk.pad.meta import META, STATIC_SPECIES
from kiosk.pad.present import Outcome, Presenter
from kiosk.pad.render import RenderSettings, complete, lfw_people, render_batch, render_clip
from kiosk.pad.video import find_videos
from kiosk.progress import Progress

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def render_all(work: Path, people: int, per_species: int, per_clip: int, clips: list[Path], seed: int,
               frames: int) -> dict[str, Any]:
    from kiosk.vision.pipeline import build_detector

    attacks = work / "attacks"
    detect = build_detector("auto").detect
    settings = RenderSettings(frames=frames)
    t0 = time.perf_counter()
    done = {sp: len(list((attacks / sp).glob(f"*/{META}"))) for sp in (*STATIC_SPECIES, "tablet_video")}
    todo = list(STATIC_SPECIES)  # complete sequences from an earlier run are kept, the rest rendered
    chosen = lfw_people(DATA / "lfw-view1", people, np.random.default_rng(seed))
    if any(done[sp] < per_species for sp in todo):
        render_batch(chosen, todo, per_species, attacks, seed, detect, settings,
                     Progress(len(todo) * per_species, "rendering photo attacks"))
    if done["tablet_video"] < per_clip * len(clips):
        bar = Progress(per_clip * len(clips), "rendering tablet_video")
        for ci, clip in enumerate(clips):
            for i in range(per_clip):
                folder = attacks / "tablet_video" / f"{ci:02d}{i:02d}_{clip.stem}"
                if not complete(folder, frames):
                    render_clip(clip, clip.stem, folder, seed + 50_000 + 100 * ci + i, detect, settings)
                bar(ci * per_clip + i + 1)
    return {"seconds": round(time.perf_counter() - t0, 1), "people": [name for name, _ in chosen],
            "rendered_now": any(done[sp] < per_species for sp in todo) or done["tablet_video"] < per_clip * len(clips)}


def _pct(r: dict[str, Any]) -> str:
    if not r["n"]:
        return "n/a"
    lo, hi = r["ci95"]
    return f"{100 * r['rate']:.1f} % ({r['k']}/{r['n']}; {100 * lo:.1f}–{100 * hi:.1f} %)"


def markdown(report: dict[str, Any]) -> str:
    """The measured section of docs/liveness_selftest.md, from a results JSON."""
    s, m = report["summary"], report["machine"]
    out = [f"Measured by `{report['command']}` on {report['finished'][:10]} at commit {report.get('commit', '?')} "
           f"(machine: {m['cpu']}, {m['cores']} "
           f"cores, shared with other work while it ran). Attacks: {report['data']['attacks']}. Bona fide: "
           f"{report['data']['bona_fide']}. Default configuration (liveness `{(report['liveness'] or {}).get('mode')}`"
           f"), presentations stopped after {report['max_seconds']} s. Rates with (errors/n; exact 95 % interval).",
           "", "| PAI species | n | people | APCER | door opened (IAPAR) | no verdict without a challenge (APNRR) "
           "| denied as presentation_attack | face passed the quality gates | seconds to verdict, median / p90 |",
           "|---|---|---|---|---|---|---|---|---|"]
    for sp, r in s["species"].items():
        tv = r["time_to_verdict_s"]
        out.append(f"| {sp} | {r['n']} | {r['subjects']} | {_pct(r['apcer'])} | {_pct(r['iapar'])} | {_pct(r['apnrr'])} "
                   f"| {_pct(r['denied_presentation_attack'])} | {_pct(r['recognisable']) if 'recognisable' in r else '-'} "
                   f"| {tv['median']} / {tv['p90']} |")
    b = s["bona_fide"]
    if b:
        tv, tg = b["time_to_verdict_s"], b["time_to_grant_s"]
        out += ["", "| bona fide (real clips) | n | BPCER | no verdict without a challenge (BPNRR) | granted "
                "| seconds to verdict, median / p90 | first usable frame to grant, median / p90 |",
                "|---|---|---|---|---|---|---|",
                f"| shared/data/videos | {b['n']} | {_pct(b['bpcer'])} | {_pct(b['bpnrr'])} | {_pct(b['granted'])} "
                f"| {tv['median']} / {tv['p90']} (n={tv['n']}) | {tg['median']} / {tg['p90']} (n={tg['n']}) |",
                "", "Per clip (a recording cannot answer a prompt: a clip that needed one is a non-response):", "",
                "| clip | verdict | reason | challenged | non-response | usable frames | seconds to grant |",
                "|---|---|---|---|---|---|---|"]
        for c in b["per_clip"]:
            name = c["name"].split("videos/")[-1]
            out.append(f"| {name} | {c['verdict']} | {c['reason'] or '-'} | {'yes' if c['challenged'] else 'no'} "
                       f"| {'yes' if c['non_response'] else 'no'} | {c['usable_frames']} "
                       f"| {c['time_to_grant_s'] if c['time_to_grant_s'] is not None else '-'} |")
    out += ["", f"Rendering took {report['render_s']} s and the replay {report['replay_s']} s for "
            f"{report['frames_replayed']} frames through the loop. Full per-presentation results: "
            "`docs/pad_results.json`."]
    return "\n".join(out) + "\n"


def outcome_of(d: dict[str, Any]) -> Outcome:
    """An Outcome back from its JSON form (derived fields dropped)."""
    known = set(Outcome.__dataclass_fields__)
    return Outcome(**{k: v for k, v in d.items() if k in known})


def write_doc(doc: Path, report: dict[str, Any]) -> None:
    text = doc.read_text()
    head = text.split("## Measured", 1)[0]
    doc.write_text(head + "## Measured\n\n" + markdown(report))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 people, 3 sequences per species, 3 clips")
    ap.add_argument("--work", type=Path, help="folder for rendered sequences (kept, re-used when present)")
    ap.add_argument("--json", type=Path, help="write the results here (default docs/pad_results.json, "
                    "none with --quick)")
    ap.add_argument("--plot", type=Path, help="write the flatness plot here")
    ap.add_argument("--max-seconds", type=float, default=12.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--doc", type=Path, help="rewrite the measured section of this markdown file "
                    "(docs/liveness_selftest.md)")
    ap.add_argument("--render-only", action="store_true",
                    help="with --work: render the attacks into DIR/attacks and stop (replay them with kiosk pad eval)")
    ap.add_argument("--from-json", type=Path, help="with --doc: take the results from this JSON, run nothing")
    args = ap.parse_args(argv)
    if args.render_only and (not args.work or args.from_json):
        ap.error("--render-only needs --work (where the rendered sequences stay) and renders: not with --from-json")
    if args.from_json:
        if not args.doc:
            ap.error("--from-json needs --doc")
        report = json.loads(args.from_json.read_text())
        report["summary"] = summarise([outcome_of(d) for d in report["presentations"]])  # with today's summary code
        args.from_json.write_text(json.dumps(report, indent=1) + "\n")
        write_doc(args.doc, report)
        print(f"wrote {args.doc} and the summary in {args.from_json}")
        return 0
    if not (DATA / "README.md").is_file():
        print(f"benchmarks.pad: the shared data is missing at {DATA}", file=sys.stderr)
        return 1
    # 60 per species: with no error the 95 % upper bound is 1 - 0.025 ** (1 / 60) = 5.96 % (50 would give 7.1 %)
    people, per_species, per_clip = (2, 3, 1) if args.quick else (10, 60, 2)
    clips = find_videos(DATA / "videos")
    if args.quick:
        clips = clips[:3]
    out_json = args.json or (None if args.quick else Path(__file__).resolve().parents[1] / "docs" / "pad_results.json")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1]).stdout.strip() or "unknown"
    with tempfile.TemporaryDirectory(prefix="pad-") as tmp:
        work = args.work or Path(tmp)
        rendering = render_all(work, people, per_species, per_clip, clips, args.seed, frames=150)
        if args.render_only:
            print(f"rendered into {work / 'attacks'} in {rendering['seconds']} s from {', '.join(rendering['people'])}")
            return 0
        from kiosk.config import Settings
        from kiosk.liveness.landmarks import build_landmarker
        from kiosk.vision.pipeline import build_pipeline

        config = present_config(Settings(), args.max_seconds)
        pipeline, card = build_pipeline()
        presentations = collect(clips, [work / "attacks"], max_seconds=args.max_seconds)
        if args.quick:
            presentations = [p for p in presentations if not p.attack or p.species != "tablet_video"
                             or any(c.stem in p.name for c in clips)]
        t0 = time.perf_counter()
        outcomes = run_all(Presenter(pipeline, card.threshold, config, build_landmarker()), presentations,
                           Progress(len(presentations), "presenting"))
        eval_s = time.perf_counter() - t0
        summary = summarise(outcomes)
        if args.plot:
            from kiosk.pad.plot import plot_flatness

            plot_flatness(outcomes, config.liveness, args.plot)
    print(table(summary))
    frames = sum(o.frames for o in outcomes)
    print(f"\nrender {rendering['seconds']} s; replay {eval_s:.1f} s for {len(outcomes)} presentations, {frames} frames "
          f"through the loop ({frames / eval_s:.1f} frames/s)")
    if out_json is not None:
        report = {
            "command": " ".join(["python -m benchmarks.pad", *(argv if argv is not None else sys.argv[1:])]),
            "commit": commit,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine(),
            "data": {"attacks": f"rendered from lfw-view1 ({people} people: {', '.join(rendering['people'])}); "
                                f"tablet_video from {len(clips)} clips in shared/data/videos",
                     "bona_fide": f"{len(clips)} real clips in shared/data/videos"},
            "liveness": None if config.liveness is None else config.liveness.model_dump(mode="json"),
            "max_seconds": args.max_seconds, "render_s": rendering["seconds"], "replay_s": round(eval_s, 1),
            "frames_replayed": frames, "summary": summary,
            "presentations": [{k: v for k, v in o.as_dict().items() if k != "decisions"} for o in outcomes],
        }
        out_json.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {out_json}")
        if args.doc:
            write_doc(args.doc, report)
            print(f"wrote {args.doc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
