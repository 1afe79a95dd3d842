"""``kiosk pad render``: attack sequences, one folder of JPEG frames and a meta.json each.

A sequence is replayable by ``kiosk.camera.replay.ReplaySource`` (and by
``kiosk run`` with a replay camera). The artefact shows a head-and-shoulders
cut-out of the photo, as an attacker would print or display it; the subject is
enrolled from *other* photos (or, for a tablet replay, another part of the clip).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from kiosk.datasets import IMAGE_SUFFIXES
from kiosk.demo.sequences import background, head_and_shoulders
from kiosk.errors import DatasetError, NoFaceError
from kiosk.imageio import read_rgb
from kiosk.pad.degradations import Camerawork, expose, glare, jpeg_bytes
from kiosk.pad.meta import BEND_WIDTHS, META, STATIC_SPECIES, ClipRange, SequenceMeta, read_meta, write_meta
from kiosk.pad.species import FACE_FRACTION, PHONE, TABLET, Plan, plan, print_texture
from kiosk.pad.surfaces import Camera, project, render
from kiosk.pad.video import duration_s, read_clip
from kiosk.vision.boxes import Face, primary_face

logger = logging.getLogger(__name__)

RGB = npt.NDArray[np.uint8]
Detect = Callable[[RGB], list[Face]]
FPS = 15.0
FRAMES = 150  # ten seconds at 15 fps: long enough for a challenge to time out
ENROLL_SPLIT = 0.8  # video: present [0, 0.8) of the clip, enroll from [0.8, 1.0]


@dataclass(frozen=True)
class RenderSettings:
    frames: int = FRAMES
    fps: float = FPS
    camera: Camera = field(default_factory=Camera)
    bend_widths: tuple[float, float] = BEND_WIDTHS  # a bent print's radius range, in widths of the print
    turn_deg: tuple[float, float] | None = None  # yaw amplitude of a turned print or phone (None: the species')


def cutout(photo: RGB, detect: Detect, origin: str) -> RGB:
    """Head and shoulders of the photo's subject, the face about 1/2.4 of the width."""
    face = primary_face(detect(photo))
    if face is None:
        raise NoFaceError(f"{origin}: no face to render")
    return head_and_shoulders(photo, face)


def frames_of(textures: Callable[[int], RGB], p: Plan, rng: np.random.Generator, s: RenderSettings,
              work: Camerawork, bg: RGB | None = None) -> Iterator[RGB]:
    """The camera's view of the artefact, frame by frame (before JPEG)."""
    cam = s.camera
    bg = background(cam.width, cam.height, rng) if bg is None else bg
    prev: npt.NDArray[np.float64] | None = None
    centre_uv = [[p.surface.tex_w / 2.0, p.surface.tex_h / 2.0]]
    for k in range(s.frames):
        pose = p.motion.at(k / s.fps)
        drawn, cover = render(bg, textures(k), cam, pose, p.surface, p.shade)
        c = project(cam, pose, p.surface, centre_uv)[0]
        spot = (c[0] + p.glare_offset[0] - 300.0 * pose.yaw, c[1] + p.glare_offset[1] + 200.0 * pose.pitch)
        shine = glare(cover, spot, p.glare_radius, p.glare_strength) if p.glare_strength > 0 else None
        motion = (0.0, 0.0) if prev is None else (float(c[0] - prev[0]) * 0.5, float(c[1] - prev[1]) * 0.5)
        prev = c
        yield expose(drawn, work, k / max(s.frames - 1, 1), rng, shine, motion)


def write_sequence(folder: Path, frames: Iterator[RGB], meta: SequenceMeta, quality: int = 90) -> Path:
    """The frames, then ``meta.json`` last: a folder whose writing was interrupted has no meta and is
    no sequence (``kiosk pad eval`` skips it, a batch render makes it again)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / META).unlink(missing_ok=True)
    for old in folder.glob("frame_*.jpg"):
        old.unlink()
    n = 0
    for n, rgb in enumerate(frames, start=1):
        (folder / f"frame_{n - 1:05d}.jpg").write_bytes(jpeg_bytes(rgb, quality))
    write_meta(folder, meta)
    logger.debug("wrote %d frames to %s", n, folder)
    return folder


def photo_artefact(species: str, cut: RGB, rng: np.random.Generator, settings: RenderSettings) -> tuple[RGB, Plan]:
    """The texture (print or phone) showing a head-and-shoulders cut-out, and the sequence's plan."""
    if species not in STATIC_SPECIES:
        raise ValueError(f"{species!r} is not a photo species; expected one of {STATIC_SPECIES}")
    face_px = cut.shape[1] * FACE_FRACTION
    if species == "phone_photo":
        tex, content_px = PHONE.texture(cut)
        face_px = face_px * content_px / cut.shape[1]
    else:
        tex = print_texture(cut, rng)
    return tex, plan(species, tex.shape[:2], face_px, rng, settings.camera.focal, settings.bend_widths,
                     settings.turn_deg)


def attack_frames(species: str, cut: RGB, seed: int, settings: RenderSettings, bg: RGB | None = None) -> list[RGB]:
    """In memory (for the demo): ``settings.frames`` frames of a static species showing ``cut``."""
    rng = np.random.default_rng(seed)
    tex, p = photo_artefact(species, cut, rng, settings)
    return list(frames_of(lambda k: tex, p, rng, settings, Camerawork.draw(rng), bg))


def render_photo(species: str, photo: Path, enroll: list[Path], subject: str, out: Path, seed: int,
                 detect: Detect, settings: RenderSettings = RenderSettings()) -> Path:
    """One sequence of a static species showing ``photo``."""
    if species not in STATIC_SPECIES:
        raise ValueError(f"{species!r} is not a photo species; expected one of {STATIC_SPECIES}")
    rng = np.random.default_rng(seed)
    cut = cutout(read_rgb(photo), detect, str(photo))
    tex, p = photo_artefact(species, cut, rng, settings)
    work = Camerawork.draw(rng)
    meta = SequenceMeta(species, subject, str(photo), seed, settings.fps, settings.frames,
                        enroll_photos=[str(e) for e in enroll], params=_params(p))
    return write_sequence(out, frames_of(lambda k: tex, p, rng, settings, work), meta, work.jpeg_quality)


def render_clip(clip: Path, subject: str, out: Path, seed: int, detect: Detect,
                settings: RenderSettings = RenderSettings()) -> Path:
    """A ``tablet_video`` sequence: the first 80 % of the clip played on a tablet (looped when short)."""
    rng = np.random.default_rng(seed)
    end = duration_s(clip)
    split = round(end * ENROLL_SPLIT, 3)
    content = read_clip(clip, 0.0, split, settings.fps, max_side=640)
    faces = [primary_face(detect(content[i])) for i in range(0, len(content), max(len(content) // 5, 1))]
    widths = [f.width for f in faces if f is not None]
    if not widths:
        raise NoFaceError(f"{clip}: no face in the clip to replay")
    first_tex, content_px = TABLET.texture(content[0])
    face_px = float(np.median(widths)) * content_px / content[0].shape[1]
    p = plan("tablet_video", first_tex.shape[:2], face_px, rng, settings.camera.focal)
    cache: dict[int, RGB] = {}

    def texture(k: int) -> RGB:
        i = k % len(content)
        if i not in cache:
            cache.clear()
            cache[i] = TABLET.texture(content[i])[0]
        return cache[i]

    meta = SequenceMeta("tablet_video", subject, str(clip), seed, settings.fps, settings.frames,
                        enroll_clip=ClipRange(str(clip), split, round(end, 3)),
                        source_clip=ClipRange(str(clip), 0.0, split), params=_params(p))
    work = Camerawork.draw(rng)
    return write_sequence(out, frames_of(texture, p, rng, settings, work), meta, work.jpeg_quality)


def _params(p: Plan) -> dict[str, float | None]:
    m, b = p.motion, p.motion.base
    return {"width_m": round(p.surface.width_m, 4), "bend_m": None if p.surface.bend_m is None else round(p.surface.bend_m, 4),
            "fold_m": None if p.surface.fold_m is None else round(p.surface.fold_m, 4),
            "fold_deg": round(math.degrees(p.surface.fold_angle), 2),
            "distance_m": round(b.z, 4), "yaw_deg": round(math.degrees(b.yaw), 2), "pitch_deg": round(math.degrees(b.pitch), 2),
            "yaw_amp_deg": round(math.degrees(m.yaw_amp), 2), "pitch_amp_deg": round(math.degrees(m.pitch_amp), 2),
            "glare": round(p.glare_strength, 1)}


def complete(folder: Path, frames: int) -> bool:
    """A sequence folder holding all its frames and a readable meta.json."""
    try:
        meta = read_meta(folder)
    except DatasetError:
        return False
    return meta.frames == frames and len(list(folder.glob("frame_*.jpg"))) == frames


def photos_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def lfw_people(root: Path, people: int, rng: np.random.Generator) -> list[tuple[str, list[Path]]]:
    """``people`` LFW identities with at least two photos (one to render, others to enroll), drawn at random."""
    images = root / "images" if (root / "images").is_dir() else root
    if not images.is_dir():
        raise DatasetError(f"{root}: not an LFW folder (expected images/<Name>/<Name>_NNNN.jpg)")
    candidates = [(d.name, photos_of(d)) for d in sorted(images.iterdir()) if d.is_dir()]
    candidates = [(n, ps) for n, ps in candidates if len(ps) >= 2]
    if len(candidates) < people:
        raise DatasetError(f"{root}: {len(candidates)} people with two or more photos; {people} needed")
    pick = rng.choice(len(candidates), size=people, replace=False)
    return [candidates[int(i)] for i in sorted(pick)]


def render_batch(people: list[tuple[str, list[Path]]], species: list[str], per_species: int, out: Path, seed: int,
                 detect: Detect, settings: RenderSettings = RenderSettings(),
                 progress: Callable[[int], None] | None = None, written: list[Path] | None = None) -> list[Path]:
    """``per_species`` sequences of each static species, people taken in turn, a photo each time
    (cycling through each person's photos) rendered and the person's other photos for enrollment.
    ``written`` is filled as the sequences are done, so that an interrupted render can say how many."""
    written = [] if written is None else written
    for si, sp in enumerate(species):
        for i in range(per_species):
            name, photos = people[i % len(people)]
            k = (i // len(people)) % len(photos)
            existing = next(iter((out / sp).glob(f"{i:03d}_{name}/{META}")), None) if (out / sp).is_dir() else None
            if existing is not None and complete(existing.parent, settings.frames):
                written.append(existing.parent)  # rendered by an earlier run with the same seed: kept
                if progress is not None:
                    progress(len(written))
                continue
            for attempt in range(len(photos)):
                photo = photos[(k + attempt) % len(photos)]
                try:
                    written.append(render_photo(sp, photo, [p for p in photos if p != photo], name,
                                                out / sp / f"{i:03d}_{name}", seed + 1000 * si + i, detect, settings))
                    break
                except NoFaceError as exc:
                    logger.warning("%s; trying another photo of %s", exc, name)
            else:
                logger.warning("no photo of %s has a detectable face: sequence %s/%03d skipped", name, sp, i)
            if progress is not None:
                progress(len(written))
    return written
