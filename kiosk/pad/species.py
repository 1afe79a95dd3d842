"""Presentation attack instruments: the artefact's texture and physical size, and how it moves.

Each species draws its parameters once per sequence from a seeded generator,
then gives a pose for every instant: a print held still (hand tremor), a
print turned in 3D (yaw and pitch up to about 35 degrees), a print bent into
a cylinder and moved, a print folded along the nose and turned (its two halves
give it depth, as an attacker who knows the defence looks for parallax would
make it), a photo on a phone screen, a video on a tablet screen.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from kiosk.pad.meta import BEND_WIDTHS, TURN_DEG
from kiosk.pad.surfaces import Pose, Surface

RGB = npt.NDArray[np.uint8]
DEG = math.pi / 180.0
FACE_FRACTION = 1.0 / 2.4  # face width / width of a head-and-shoulders cut-out (kiosk.demo.sequences)


@dataclass(frozen=True)
class Wobble:
    """A smooth random signal: a few sinusoids of random frequency and phase."""

    amps: tuple[float, ...]
    freqs: tuple[float, ...]
    phases: tuple[float, ...]

    @classmethod
    def draw(cls, rng: np.random.Generator, amp: float, f_lo: float, f_hi: float, n: int = 3) -> Wobble:
        a = rng.uniform(0.3, 1.0, n)
        a = a / a.sum() * amp
        return cls(tuple(map(float, a)), tuple(map(float, rng.uniform(f_lo, f_hi, n))),
                   tuple(map(float, rng.uniform(0, 2 * math.pi, n))))

    def __call__(self, t: float) -> float:
        return sum(a * math.sin(2 * math.pi * f * t + p) for a, f, p in zip(self.amps, self.freqs, self.phases))


@dataclass(frozen=True)
class Motion:
    """Base pose, slow deliberate movement (sinusoids of given amplitude and period) and tremor."""

    base: Pose
    yaw_amp: float = 0.0
    pitch_amp: float = 0.0
    period_s: tuple[float, float] = (4.0, 5.0)
    phase: tuple[float, float] = (0.0, 0.0)
    drift: tuple[Wobble, Wobble, Wobble] | None = None  # x, y, z (metres)
    tremor: tuple[Wobble, ...] = field(default_factory=tuple)  # yaw, pitch, roll (radians), x, y, z (metres)

    def at(self, t: float) -> Pose:
        b = self.base
        yaw = b.yaw + self.yaw_amp * math.sin(2 * math.pi * t / self.period_s[0] + self.phase[0])
        pitch = b.pitch + self.pitch_amp * math.sin(2 * math.pi * t / self.period_s[1] + self.phase[1])
        d = [w(t) for w in self.drift] if self.drift else [0.0, 0.0, 0.0]
        tr = [w(t) for w in self.tremor] if self.tremor else [0.0] * 6
        return Pose(yaw + tr[0], pitch + tr[1], b.roll + tr[2], b.x + d[0] + tr[3], b.y + d[1] + tr[4],
                    b.z + d[2] + tr[5])


def tremor(rng: np.random.Generator, angle_deg: float, shift_m: float) -> tuple[Wobble, ...]:
    """Physiological hand tremor: 4-10 Hz, a fraction of a degree and a millimetre or two."""
    return tuple([Wobble.draw(rng, angle_deg * DEG, 3.0, 10.0) for _ in range(3)]
                 + [Wobble.draw(rng, shift_m, 3.0, 10.0) for _ in range(3)])


def drift(rng: np.random.Generator, shift_m: float) -> tuple[Wobble, Wobble, Wobble]:
    return (Wobble.draw(rng, shift_m, 0.05, 0.4), Wobble.draw(rng, shift_m * 0.6, 0.05, 0.4),
            Wobble.draw(rng, shift_m, 0.05, 0.3))


def print_texture(photo: RGB, rng: np.random.Generator) -> RGB:
    """A photo as printed: ink's narrower range, a little desaturation, a white paper margin."""
    img = photo.astype(np.float32)
    grey = img.mean(axis=2, keepdims=True)
    img = grey + (img - grey) * rng.uniform(0.75, 0.95)
    img = rng.uniform(12, 28) + img * rng.uniform(0.8, 0.9)
    margin = max(int(photo.shape[1] * rng.uniform(0.03, 0.08)), 2)
    paper = float(rng.uniform(225, 250))
    return np.pad(np.clip(img, 0, 255).astype(np.uint8), ((margin, margin), (margin, margin), (0, 0)),
                  constant_values=int(paper))


@functools.lru_cache(maxsize=4)
def _grid_mask(h: int, w: int) -> RGB:
    """Sub-pixel weights in 1/255 steps (uint8 keeps the multiplication cheap)."""
    mask = np.full((w, 3), 0.55, np.float32)
    mask[np.arange(w), np.arange(w) % 3] = 1.0
    rows = np.where(np.arange(h) % 3 == 2, 0.75, 1.0).astype(np.float32)
    return np.ascontiguousarray(np.round(mask[None, :, :] * rows[:, None, None] * 255)).astype(np.uint8)


def pixel_grid(display: RGB) -> RGB:
    """A display image as the camera sees the screen: RGB sub-pixel stripes and row gaps, three texture
    pixels per display pixel (sampled by the camera's grid, this is what makes moire)."""
    h, w = display.shape[:2]
    big = cv2.resize(display, (3 * w, 3 * h), interpolation=cv2.INTER_NEAREST)
    return np.asarray(cv2.multiply(big, _grid_mask(*big.shape[:2]), scale=1.5 / 255.0), np.uint8)


@dataclass(frozen=True)
class Device:
    """A phone or tablet: screen of ``screen_px`` display pixels inside a bezel, ``width_m`` wide overall."""

    screen_px: tuple[int, int]  # width, height in display pixels
    bezel_px: int  # in display pixels
    width_m: float
    body: tuple[int, int, int] = (18, 18, 20)

    def texture(self, content: RGB, backdrop: int = 12) -> tuple[RGB, float]:
        """The device with ``content`` fitted to its screen; and the content's width in texture pixels."""
        sw, sh = self.screen_px
        h, w = content.shape[:2]
        scale = min(sw / w, sh / h)
        cw, ch = max(int(w * scale), 1), max(int(h * scale), 1)
        screen = np.full((sh, sw, 3), backdrop, np.uint8)
        fitted = cv2.resize(content, (cw, ch), interpolation=cv2.INTER_AREA)
        y0, x0 = (sh - ch) // 2, (sw - cw) // 2
        screen[y0:y0 + ch, x0:x0 + cw] = fitted
        b = self.bezel_px * 3
        framed = self._body().copy()
        framed[b:b + 3 * sh, b:b + 3 * sw] = pixel_grid(screen)
        return framed, cw * 3

    def _body(self) -> RGB:
        return _device_body(self.screen_px, self.bezel_px, self.body)


@functools.lru_cache(maxsize=4)
def _device_body(screen_px: tuple[int, int], bezel_px: int, colour: tuple[int, int, int]) -> RGB:
    """The device's body with rounded corners (black outside them), screen area left to fill."""
    b = bezel_px * 3
    h, w = 3 * screen_px[1] + 2 * b, 3 * screen_px[0] + 2 * b
    body = np.empty((h, w, 3), np.uint8)
    body[:] = colour
    r = 2 * b
    corner = np.zeros((h, w), np.uint8)
    cv2.rectangle(corner, (r, 0), (w - r, h), 255, -1)
    cv2.rectangle(corner, (0, r), (w, h - r), 255, -1)
    for cx, cy in ((r, r), (w - r, r), (r, h - r), (w - r, h - r)):
        cv2.circle(corner, (cx, cy), r, 255, -1)
    body[corner == 0] = 0
    return body


PHONE = Device((270, 585), 8, 0.072)
TABLET = Device((640, 448), 24, 0.21)


@dataclass(frozen=True)
class Plan:
    """Everything one sequence needs: surface, motion, glare, the face's width on the surface (texture px)."""

    surface: Surface
    motion: Motion
    glare_strength: float
    glare_radius: float
    glare_offset: tuple[float, float]
    face_px: float
    shade: float = 0.0


def _base(rng: np.random.Generator, z: float, tilt_deg: float) -> Pose:
    return Pose(rng.uniform(-tilt_deg, tilt_deg) * DEG, rng.uniform(-tilt_deg, tilt_deg) * DEG,
                rng.uniform(-6, 6) * DEG, rng.uniform(-0.15, 0.15) * z, rng.uniform(-0.12, 0.05) * z, z)


def distance_for(face_m: float, focal: float, face_px: float) -> float:
    """How far away an artefact must be for a face ``face_m`` wide on it to span ``face_px`` pixels."""
    return focal * face_m / face_px


def plan(species: str, tex_shape: tuple[int, int], face_tex_px: float, rng: np.random.Generator,
         focal: float = 560.0, bend_widths: tuple[float, float] = BEND_WIDTHS,
         turn_deg: tuple[float, float] | None = None) -> Plan:
    """Draw a sequence's surface and motion. ``tex_shape``: (height, width) of the artefact texture.
    ``bend_widths``: the range a bent print's radius is drawn from, in widths of the print.
    ``turn_deg``: the range the yaw amplitude of a turned print or a phone is drawn from, in degrees
    (None: the species' own, ``TURN_DEG``)."""
    th, tw = tex_shape
    target_px = float(rng.uniform(100, 170))
    if species in ("print_still", "print_turned", "print_bent", "print_folded"):
        width = float(rng.uniform(0.14, 0.22))
    elif species == "phone_photo":
        width = PHONE.width_m
    elif species == "tablet_video":
        width = TABLET.width_m
    else:
        raise ValueError(f"unknown species {species!r}")
    bend = None
    if species == "print_bent":
        bend = float(rng.choice([-1.0, 1.0]) * rng.uniform(*bend_widths) * width)
    fold, fold_angle = None, 0.0
    if species == "print_folded":  # along the nose, by eye: within a few millimetres of the face's middle
        fold, fold_angle = float(rng.uniform(-0.004, 0.004)), float(rng.uniform(20, 50) * DEG)
    surface = Surface(tw, th, width, bend, fold, fold_angle)
    z = distance_for(face_tex_px * surface.m_per_px, focal, target_px)
    glare = (float(rng.uniform(0, 35)), float(rng.uniform(25, 70)), (float(rng.uniform(-60, 60)), float(rng.uniform(-60, 40))))
    if species == "print_still":
        motion = Motion(_base(rng, z, 10), tremor=tremor(rng, rng.uniform(0.3, 1.0), rng.uniform(0.0005, 0.002)),
                        drift=drift(rng, 0.003))
    elif species == "print_turned":
        motion = Motion(_base(rng, z, 5), yaw_amp=rng.uniform(*(turn_deg or TURN_DEG[species])) * DEG,
                        pitch_amp=rng.uniform(8, 30) * DEG,
                        period_s=(rng.uniform(2.5, 5.0), rng.uniform(3.0, 6.0)), phase=tuple(rng.uniform(0, 6.28, 2)),
                        tremor=tremor(rng, 0.5, 0.001), drift=drift(rng, 0.02))
    elif species == "print_bent":
        motion = Motion(_base(rng, z, 8), yaw_amp=rng.uniform(5, 25) * DEG, pitch_amp=rng.uniform(3, 12) * DEG,
                        period_s=(rng.uniform(2.5, 5.0), rng.uniform(3.0, 6.0)), phase=tuple(rng.uniform(0, 6.28, 2)),
                        tremor=tremor(rng, 0.5, 0.001), drift=drift(rng, 0.02))
        return Plan(surface, motion, *glare, face_px=face_tex_px, shade=float(rng.uniform(0.1, 0.35)))
    elif species == "print_folded":
        motion = Motion(_base(rng, z, 5), yaw_amp=rng.uniform(15, 30) * DEG, pitch_amp=rng.uniform(5, 15) * DEG,
                        period_s=(rng.uniform(2.5, 5.0), rng.uniform(3.0, 6.0)), phase=tuple(rng.uniform(0, 6.28, 2)),
                        tremor=tremor(rng, 0.5, 0.001), drift=drift(rng, 0.02))
        return Plan(surface, motion, *glare, face_px=face_tex_px, shade=float(rng.uniform(0.1, 0.35)))
    elif species == "phone_photo":
        glare = (float(rng.uniform(30, 90)), float(rng.uniform(20, 60)), glare[2])
        motion = Motion(_base(rng, z, 8), yaw_amp=rng.uniform(*(turn_deg or TURN_DEG[species])) * DEG,
                        pitch_amp=rng.uniform(3, 15) * DEG,
                        period_s=(rng.uniform(2.5, 6.0), rng.uniform(3.0, 7.0)), phase=tuple(rng.uniform(0, 6.28, 2)),
                        tremor=tremor(rng, 0.6, 0.001), drift=drift(rng, 0.01))
    else:
        glare = (float(rng.uniform(30, 90)), float(rng.uniform(30, 80)), glare[2])
        motion = Motion(_base(rng, z, 6), yaw_amp=rng.uniform(0, 10) * DEG, pitch_amp=rng.uniform(0, 6) * DEG,
                        period_s=(rng.uniform(3.0, 7.0), rng.uniform(3.0, 7.0)), phase=tuple(rng.uniform(0, 6.28, 2)),
                        tremor=tremor(rng, 0.4, 0.001), drift=drift(rng, 0.01))
    return Plan(surface, motion, *glare, face_px=face_tex_px)
