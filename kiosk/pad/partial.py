"""A partial attack: a print of an enrolled person's upper face worn over a real, unenrolled face.

The sheet is cut from the victim's photo: everything above a line across the
nose (``cut``: 0 at the nasion, 1 at the nose tip), as wide as the face. It is
worn like a mask: on every frame it is placed by the homography that maps the
photo's upper-face landmarks (eye corners, brows, nasion, forehead) onto the
real head's, so it turns with the head, while the real nose tip, cheeks, mouth
and chin below it move as a head does. Recognition sees the victim's eyes and
brows; the flatness cue sees a flat upper face over real depth.

The camera sees the sheet as it sees the rest of the scene: each sequence draws a
camera (``kiosk.pad.degradations``); the sheet is defocused like it, gets fresh
sensor noise on every frame, and the whole frame is JPEG-compressed.

With ``eye_holes`` the sheet has its eyes cut out, as an attacker would cut a
photo to wear it: an ellipse around each of the photo's eyes, ``eye_holes``
times as long as the eye (corner to corner) and half as high as long. The holes
land where the sheet's eyes land, over the wearer's eyes: the real eyes (and
their blinks) show through.

With ``glare`` the sheet is glossy photo paper under a lamp: a specular
highlight (``glare`` grey levels at its peak, a Gaussian of sigma ``GLARE_RADIUS`` IOD)
lies on it and, as the head turns, travels across it (``GLARE_TRAVEL`` IOD per
IOD of change in the nose's offset from the eyes' midpoint since the first
frame, ``kiosk.liveness.geometry.yaw_pitch``),
as a reflection moves on a turned sheet while the print under it does not. Only the
sheet shines; the real skin below it does not.

Landmarks of the real head come from the clean frame (before the sheet covers
it): the mask's pose is the head's. The detector and landmarker given here run
on the capture thread: give the source interpreters of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from kiosk.camera.base import Frame
from kiosk.errors import DatasetError
from kiosk.liveness import geometry
from kiosk.pad.degradations import Camerawork, glare, jpeg_bytes
from kiosk.vision.boxes import Face, primary_face

RGB = npt.NDArray[np.uint8]
F64 = npt.NDArray[np.float64]
Detect = Callable[[RGB], list[Face]]
Landmarks = Callable[[RGB, Face], "npt.NDArray[np.float32] | None"]

# FaceMesh points that fix the sheet's pose: eye corners, brows, nasion and forehead.
UPPER = (33, 133, 362, 263, 70, 105, 107, 336, 334, 300, 168, 6, 151, 9, 8, 10)
NASION, NOSE_TIP = 168, 1
CHEEK_RIGHT_IMAGE_LEFT, CHEEK_LEFT_IMAGE_RIGHT = 234, 454
EYE_CORNERS = ((33, 133), (362, 263))  # outer and inner corner of each eye
GLARE_RADIUS = 0.5  # the highlight's sigma, IOD of the face in the frame
GLARE_TRAVEL = 3.0  # IOD the highlight moves per IOD of yaw (and of pitch)


@dataclass(frozen=True)
class Highlight:
    """A specular highlight in frame pixels: centre, sigma and peak grey levels."""

    x: float
    y: float
    radius: float
    strength: float


def sheet_mask(shape: tuple[int, int], landmarks: npt.NDArray[np.floating], cut: float, margin: float = 0.08,
               eye_holes: float = 0.0) -> F64:
    """Where the sheet is, in the photo: above the line through the point ``cut`` of the way from the
    nasion to the nose tip, square to the nose, between the cheeks widened by ``margin`` of the face
    width; with ``eye_holes`` > 0, less an ellipse around each eye (see the module). Values in
    [0, 1], (h, w)."""
    if eye_holes < 0:
        raise ValueError(f"eye_holes is a multiple of the eye's length, 0 (none) or more, not {eye_holes}")
    p = np.asarray(landmarks, np.float64)[:, :2]
    nasion, tip = p[NASION], p[NOSE_TIP]
    down = tip - nasion
    n = float(np.linalg.norm(down))
    if n < 1e-6:
        raise DatasetError("the photo's nose has no length: not a frontal face")
    down /= n
    across = np.array([-down[1], down[0]])
    at = nasion + cut * (tip - nasion)
    left, right = p[CHEEK_RIGHT_IMAGE_LEFT], p[CHEEK_LEFT_IMAGE_RIGHT]
    half = abs(float((right - left) @ across)) / 2.0 * (1.0 + 2.0 * margin)
    mid = float(((left + right) / 2.0 - at) @ across)
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    rel = np.stack([xs - at[0], ys - at[1]], axis=-1)
    below = rel @ down
    side = rel @ across - mid
    sheet = (below <= 0.0) & (np.abs(side) <= half)
    if eye_holes > 0:
        for outer, inner in EYE_CORNERS:
            a, b = p[outer], p[inner]
            along = b - a
            length = float(np.linalg.norm(along))
            if length < 1e-6:
                raise DatasetError("the photo's eye has no length: cannot cut a hole for it")
            ex = along / length
            ey = np.array([-ex[1], ex[0]])
            semi = 0.5 * eye_holes * length
            d = np.stack([xs - 0.5 * (a[0] + b[0]), ys - 0.5 * (a[1] + b[1])], axis=-1)
            sheet &= ((d @ ex) / semi) ** 2 + ((d @ ey) / (0.5 * semi)) ** 2 > 1.0
    return sheet.astype(np.float64)


def upper_homography(photo_landmarks: npt.NDArray[np.floating], frame_landmarks: npt.NDArray[np.floating]) -> F64:
    """The least-squares homography from the photo's upper-face points to the frame's, 3x3."""
    a = np.asarray(photo_landmarks, np.float64)[list(UPPER), :2]
    b = np.asarray(frame_landmarks, np.float64)[list(UPPER), :2]
    h, _ = cv2.findHomography(a, b, 0)
    if h is None:
        raise DatasetError("no homography between the photo's upper face and the frame's")
    return np.asarray(h, np.float64)


def wear(frame: RGB, photo: RGB, mask: F64, h: F64, gain: float = 0.9, work: Camerawork | None = None,
         rng: np.random.Generator | None = None, shine: Highlight | None = None) -> RGB:
    """``frame`` with the masked part of the photo warped by ``h`` over it; with ``shine``, a specular
    highlight on the sheet (only where the sheet is); with ``work``, the sheet defocused and noisy as
    that camera would record it (noise drawn from ``rng``) and the frame JPEG-compressed."""
    rows, cols = frame.shape[:2]
    warped = cv2.warpPerspective(photo, h, (cols, rows), flags=cv2.INTER_LINEAR).astype(np.float32) * gain
    cover = cv2.warpPerspective(mask.astype(np.float32), h, (cols, rows), flags=cv2.INTER_LINEAR)[..., None]
    if shine is not None:
        spot = glare(np.ascontiguousarray(cover[..., 0]), (shine.x, shine.y), shine.radius, shine.strength)
        warped = warped + spot.astype(np.float32)[..., None]
    if work is not None:
        warped = np.asarray(cv2.GaussianBlur(warped, (0, 0), work.blur), np.float32)
        noise = (rng if rng is not None else np.random.default_rng()).normal(0.0, work.noise, warped.shape)
        warped = warped + noise.astype(np.float32)
    out = np.clip(np.rint(frame.astype(np.float32) * (1.0 - cover) + warped * cover), 0, 255).astype(np.uint8)
    if work is None:
        return out
    decoded = cv2.imdecode(np.frombuffer(jpeg_bytes(out, work.jpeg_quality), np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        raise ValueError("JPEG decoding failed")
    return np.asarray(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB), np.uint8)


class PartialPrintSource:
    """A frame source that shows ``inner``'s frames with the victim's upper face worn over the real one."""

    def __init__(self, inner: Any, photo: RGB, detect: Detect, landmarks: Landmarks, cut: float = 1.0,
                 seed: int = 0, eye_holes: float = 0.0, glare: float = 0.0) -> None:
        if not 0.0 <= cut <= 1.0:
            raise ValueError(f"cut is a fraction of the nose, 0 to 1, not {cut}")
        if not 0.0 <= glare <= 255.0:
            raise ValueError(f"glare is the highlight's peak in grey levels, 0 (matte) to 255, not {glare}")
        self.glare = glare
        self.inner = inner
        self.photo = np.asarray(photo, np.uint8)
        self.detect = detect
        self.landmarks = landmarks
        face = primary_face(detect(self.photo))
        marks = None if face is None else landmarks(self.photo, face)
        if marks is None:
            raise DatasetError("no face in the photo to cut the sheet from")
        self._photo_marks = marks
        self._mask = sheet_mask(self.photo.shape[:2], marks, cut, eye_holes=eye_holes)
        self._h: F64 | None = None  # the last pose: the sheet stays where it was when a frame has no face
        self.shine: Highlight | None = None  # the highlight on the last frame worn (glossy paper)
        self._pose0: npt.NDArray[np.float64] | None = None
        self.worn_frames = 0
        self._rng = np.random.default_rng(seed)
        self.camera = Camerawork.draw(self._rng)
        # where the lamp's reflection sits when the face looks straight at the camera: on the upper
        # face, up to half an IOD off its centre (IOD of the frame), drawn once per sheet
        self._glare_offset = self._rng.uniform(-0.5, 0.5, 2) if glare > 0 else np.zeros(2)
        sheet_px = np.argwhere(self._mask > 0)
        self._sheet_centre = np.array([sheet_px[:, 1].mean(), sheet_px[:, 0].mean(), 1.0])

    def open(self) -> None:
        self.inner.open()

    def read(self) -> Frame | None:
        frame = self.inner.read()
        if frame is None:
            return None
        face = primary_face(self.detect(frame.rgb))
        marks = None if face is None else self.landmarks(frame.rgb, face)
        if marks is not None:
            self._h = upper_homography(self._photo_marks, marks)
            if self.glare > 0:
                self.shine = self._highlight(self._h, marks)
        if self._h is None:
            return frame
        self.worn_frames += 1
        return Frame(wear(frame.rgb, self.photo, self._mask, self._h, work=self.camera, rng=self._rng,
                          shine=self.shine), frame.t, frame.index)

    def _highlight(self, h: F64, marks: npt.NDArray[np.floating]) -> Highlight:
        """The lamp's reflection on the sheet as the head (and the sheet with it) is posed now."""
        c = h @ self._sheet_centre
        rig = geometry.rigid(marks)
        pose = np.array(geometry.yaw_pitch(rig))
        if self._pose0 is None:
            self._pose0 = pose  # the reflection's offset is drawn for the first pose seen
        iod = geometry.inter_ocular(rig)
        dx, dy = self._glare_offset - GLARE_TRAVEL * (pose - self._pose0)
        return Highlight(float(c[0] / c[2] + dx * iod), float(c[1] / c[2] + dy * iod), GLARE_RADIUS * iod,
                         self.glare)

    def close(self) -> None:
        self.inner.close()
