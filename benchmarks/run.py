"""Every benchmark in one run: a table on stdout, JSON, and docs/performance.md.

    .venv/bin/python -m benchmarks.run [--quick] [--skip-reference] [--json out.json] [--doc docs/performance.md]

Each figure is the median of repeated runs (min and max alongside), measured
on this machine in this run; ratios compare runs made in this same script.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import loop, stages, sync
from benchmarks.machine import machine


def _ms(d: dict[str, Any]) -> str:
    return f"{d['median_ms']:.2f} ({d['min_ms']:.2f}–{d['max_ms']:.2f})"


INT8_GOAL = 1.5  # int8 embedder at least this much faster than float32, both with XNNPACK


def int8_note(ratio: float, features: list[str]) -> str:
    """What the int8 / float32 ratio of this run says, given the CPU's int8 dot-product instructions."""
    which = ", ".join(features) or "no int8 dot-product instruction"
    if ratio >= INT8_GOAL:
        return (f"The int8 embedder is {ratio}x faster than float32 here (goal >= {INT8_GOAL}x): this CPU has "
                f"{which}. On an x86 CPU without such an instruction (AVX2 only) the same models measured 1.12x on 2026-11-22; "
                "the ratio follows the CPU's int8 instructions, so it must be measured on the board that "
                "will run it (a Raspberry Pi 5's Cortex-A76 has the ARM dot product, asimddp; a Pi 4's "
                "Cortex-A72 has not).")
    return (f"The int8 embedder is only {ratio}x faster than float32 here (goal >= {INT8_GOAL}x): this CPU has "
            f"{which}, and without a fast int8 dot product int8 gains little. It is expected on CPUs with one "
            "(x86 VNNI, the ARM dot product of a Raspberry Pi 5's Cortex-A76); that needs measuring there.")


KEPT = "<!-- figures of the separate benchmarks: kept when this report is rewritten -->"


def markdown(r: dict[str, Any], command: str) -> str:
    m = r["machine"]
    s = r["stages"]
    st = s["stages"]
    lp, fp = r["loop"]["loop"], r["loop"]["footprint"]
    a = r["sync"]["apply"]
    p = r["sync"]["publish"]
    out = [
        "# Performance",
        "",
        f"Measured by `{command}` on {time.strftime('%Y-%m-%d', time.gmtime(r['finished']))}.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['arch']}, Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["packages"].items()) + "; "
        + f"int8 dot-product instructions: {', '.join(m.get('int8_dot_product') or []) or 'none'}.",
        "Every figure below was measured on that machine. **Raspberry Pi and Coral figures still need the "
        "hardware**; none is measured here.",
        "",
        "## Per stage (640x480 frame, 2 threads)",
        "",
        "| stage | median ms (min–max) |",
        "|---|---|",
    ]
    out += [f"| {k} | {_ms(v)} |" for k, v in st.items()]
    out += [
        "",
        f"Ratios in this run: float32 / int8 (both XNNPACK) = **{s['ratios']['float32_over_int8_xnnpack']}x**; "
        f"int8 without / with XNNPACK = {s['ratios']['int8_no_xnnpack_over_xnnpack']}x. "
        f"Model size: int8 {s['model_bytes']['facenet_int8.tflite'] / 1e6:.1f} MB, float32 "
        f"{s['model_bytes']['facenet_float32.tflite'] / 1e6:.1f} MB. Load: "
        + ", ".join(f"{k} {v} ms" for k, v in s["load_ms"].items()) + ".",
        "",
        int8_note(s["ratios"]["float32_over_int8_xnnpack"], m.get("int8_dot_product") or []),
        "",
        "## The real loop (replayed walk-ups, mock relay)",
        "",
        f"- {lp['frames']} frames in {lp['wall_s']} s through `KioskLoop` ({lp['fps']} frames/s, but most "
        f"replayed frames show an empty hallway). Frames with a face take a median "
        f"{lp['frame_ms_with_face_median']} ms: **{1000 / lp['frame_ms_with_face_median']:.0f} frames/s** "
        "while someone is at the door.",
        f"- Frame-to-decision processing: median {lp['frame_ms_all_median']} ms per frame, "
        f"{lp['frame_ms_with_face_median']} ms with a face (max {lp['frame_ms_with_face_max']} ms); "
        f"the {lp['decisions']} decision frames took {', '.join(str(x) for x in lp['decision_frame_ms'])} ms.",
        f"- `kiosk run`, exec to READY=1: median **{fp['ready_s_median']} s** (max {fp['ready_s_max']} s, goal "
        f"<= 3 s); peak RSS median **{fp['peak_rss_mib_median']} MiB** (max {fp['peak_rss_mib_max']}, "
        f"goal <= 250 MB), over {fp['runs']} runs.",
        "",
        "## Scale and sync",
        "",
    ]
    for n in (1000, 10_000, 100_000):
        if f"match_{n}" in st:
            out.append(f"- 1:N match against {n:,} enrolled embeddings: {_ms(st[f'match_{n}'])} ms, gallery "
                       f"{s[f'gallery_{n}_mib']} MiB (goal <= 20 ms at 100k).")
    out += [
        f"- Applying {a['n']:,} signed enrollments (verify Ed25519, decode, encrypt, one SQLite transaction each): "
        f"**{a['apply_s']} s** ({a['per_enrollment_ms']} ms each; goal <= 10 s for 10,000); building the "
        f"{a['gallery_rows']:,}-row gallery from the store: {a['gallery_build_s']} s.",
        f"- Events through audit log + outbox + QoS 1 to a local mosquitto: {p['delivered']:,} of {p['n']:,} "
        f"delivered in {p['delivered_s']} s, **{p['events_per_s']} events/s**.",
        "",
    ]
    ref = r.get("reference")
    if ref:
        out += [
            "## Against the reference FaceNet pipeline",
            "",
            f"Same weights (`facenet_keras.h5`), same photos, {ref['threads']} threads. Reference: "
            f"{ref['reference']['pipeline']}. Its embeddings equal our float32 TFLite model's on the same "
            f"crops (min cosine {ref['weights_check']['min_cosine_torch_vs_tflite_float']}), so the comparison "
            "is of pipelines, not of weights.",
            "",
            f"| per frame with one face ({ref['frame']}) | median ms (min–max) |",
            "|---|---|",
            f"| ours: {ref['ours']['pipeline']} | {_ms(ref['ours']['frame_ms'])} |",
            f"| reference | {_ms(ref['reference']['frame_ms'])} |",
            "",
            f"Speed-up: **{ref['speedup']}x** (goal >= 4x).",
            "",
            "| set | pairs (photos where both found a face) | ours int8: best acc. / AUC / TAR@FAR=1e-3 | "
            "reference float32 |",
            "|---|---|---|---|",
        ]
        for name, acc in ref["accuracy"].items():
            o, f = acc["ours_int8"], acc["reference_float32"]
            out.append(f"| {name} | {acc['pairs']:,} ({acc['both_found_face']} of {acc['images']}) | "
                       f"{100 * o['best_accuracy']:.2f} % / {o['auc']:.4f} / {100 * o['tar_at_far_0.001']:.2f} % | "
                       f"{100 * f['best_accuracy']:.2f} % / {f['auc']:.4f} / {100 * f['tar_at_far_0.001']:.2f} % |")
        out += [
            "",
            "Faces found: " + "; ".join(f"{n} ours {a['faces_found']['ours']}, reference "
                                        f"{a['faces_found']['reference']} of {a['images']}"
                                        for n, a in ref["accuracy"].items()) + ".",
            "",
        ]
    out += [
        "## Projections (not measurements)",
        "",
        "None of the figures above was measured on a Raspberry Pi. A projection, labelled as such: the int8 "
        "embedder is most of the per-frame work here. *Assuming* (an assumption, not a measurement or a "
        "sourced figure) that a Pi 5 core (Cortex-A76, 2.4 GHz) runs XNNPACK int8 convolutions 2–3x slower than "
        "a core of this machine, with 2 threads on both that would give "
        f"{st['embed_int8_xnnpack']['median_ms']:.1f} ms x 2–3 = "
        f"{2 * st['embed_int8_xnnpack']['median_ms']:.0f}–{3 * st['embed_int8_xnnpack']['median_ms']:.0f} ms per "
        "embedding on a Pi 5. This must be replaced by a measurement.",
        "",
    ]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few repetitions, small sizes (keeps the script working)")
    ap.add_argument("--skip-reference", action="store_true", help="skip the PyTorch reference (needs .venv-bench)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--doc", type=Path, help="write the Markdown report here (e.g. docs/performance.md)")
    args = ap.parse_args()
    command = "python -m benchmarks.run" + (" --quick" if args.quick else "")
    r: dict[str, Any] = {"machine": machine()}
    print("== stages", file=sys.stderr)
    r["stages"] = stages.run(args.quick, 2)
    print(stages.table(r["stages"]))
    print("== loop and footprint", file=sys.stderr)
    r["loop"] = {"loop": loop.loop_latency(args.quick), "footprint": loop.footprint(2 if args.quick else 5)}
    print(json.dumps(r["loop"]))
    print("== sync", file=sys.stderr)
    with tempfile.TemporaryDirectory() as d:
        r["sync"] = {"apply": sync.apply_enrollments(500 if args.quick else 10_000, Path(d)),
                     "publish": sync.publish_events(200 if args.quick else 2000, Path(d))}
    print(json.dumps(r["sync"]))
    if not args.skip_reference:
        from benchmarks import compare

        print("== reference pipeline", file=sys.stderr)
        r["reference"] = compare.run(args.quick)
        print(compare.table(r["reference"]))
    r["finished"] = time.time()
    if args.json:
        args.json.write_text(json.dumps(r, indent=2) + "\n")
    if args.doc:
        kept = ""
        if args.doc.is_file() and KEPT in (old := args.doc.read_text()):
            kept = "\n" + old[old.index(KEPT):]  # figures of the separate benchmarks below survive a re-run
        args.doc.write_text(markdown(r, command) + "\n" + kept)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
