"""The ``[liveness]`` configuration section."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kiosk.door.pinnames import GpioPin, refuse_shared


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LogPrompterSettings(_Section):
    type: Literal["log"] = Field("log", description="write the prompt to the log")


class GpioPrompterSettings(_Section):
    type: Literal["gpio"] = Field("gpio", description="an LED on each side of the camera, and a buzzer")
    left_pin: GpioPin = Field(description="GPIO of the LED on the person's left (BCM number or gpiozero pin name)")
    right_pin: GpioPin = Field(description="GPIO of the LED on the person's right")
    buzzer_pin: GpioPin | None = Field(None, description="optional buzzer, sounded with every prompt")
    active_high: bool = Field(True, description="the LEDs are lit at a high level")
    buzzer_active_high: bool | None = Field(None, description="the buzzer sounds at a high level "
                                                              "(default: the same as active_high)")

    @model_validator(mode="after")
    def _distinct_pins(self) -> GpioPrompterSettings:
        refuse_shared(self.pins(), "left_pin, right_pin and buzzer_pin must be different pins")
        return self

    def pins(self) -> list[tuple[str, int | str | None]]:
        """Each pin with its setting's name."""
        return [("left_pin", self.left_pin), ("right_pin", self.right_pin), ("buzzer_pin", self.buzzer_pin)]

    def buzzer_high(self) -> bool:
        return self.active_high if self.buzzer_active_high is None else self.buzzer_active_high


class MqttPrompterSettings(_Section):
    type: Literal["mqtt"] = Field("mqtt", description="publish on <prefix>/<site>/<device>/prompt (needs [mqtt])")


PrompterSettings = Annotated[LogPrompterSettings | GpioPrompterSettings | MqttPrompterSettings,
                             Field(discriminator="type")]


class LivenessSettings(_Section):
    """Presentation-attack defence (docs/liveness.md). Distances are in inter-ocular distances (IOD).

    The defaults were chosen on the real clips and the rendered flat attacks
    described in docs/liveness.md.
    """

    mode: Literal["challenge", "passive", "off"] = Field(
        "challenge", description="challenge: passive geometry, then a prompted head turn when it gives no verdict; "
        "passive: geometry only, never prompts; off: no defence (a photo can open the door)")
    min_motion: float = Field(0.050, gt=0, le=1,
                              description="shape change (RMS after the best similarity, IOD) two frames need "
                                          "before they are compared")
    live_ratio: float = Field(0.50, gt=0, le=1,
                              description="homography residual / shape change at or above which a pair shows parallax")
    max_live_ratio: float = Field(0.95, gt=0, le=1,
                                  description="homography residual / shape change above which a pair is landmark "
                                              "noise, not parallax (isotropic noise leaves about 0.97, a turning "
                                              "head about 0.7)")
    flat_ratio: float = Field(0.25, ge=0, le=1,
                              description="homography residual / shape change at or below which a pair is flat")
    min_live_residual: float = Field(0.10, ge=0.03, le=1,
                                     description="smallest homography residual (IOD) that counts as parallax "
                                                 "(also the prompted turn's floor when lower than "
                                                 "challenge_live_residual, hence the same lower bound)")
    challenge_live_residual: float = Field(0.06, ge=0.03, le=1,
                                           description="smallest homography residual (IOD) that counts as parallax "
                                                       "once the prompted turn has been seen (min_live_residual "
                                                       "when that is lower)")
    noise_factor: float = Field(12.0, ge=0, le=100,
                                description="the parallax residual must be at least this many times the track's own "
                                            "landmark jitter (a screen's moire makes landmarks jitter; 0: no check)")
    passive_noise_factor: float = Field(18.0, ge=0, le=100,
                                        description="before a prompted turn is seen, the parallax residual must be "
                                                    "at least this many times the track's jitter (the larger of this "
                                                    "and noise_factor; none when noise_factor is 0): motion nobody "
                                                    "asked for proves less than a turn made on request")
    planar_band_max: float = Field(0.015, ge=0, le=0.1,
                                   description="a pair with parallax counts as live only if neither half of the eye "
                                               "band's pixels can be aligned by one homography to within this (IOD): "
                                               "a print of the upper face worn over a real face can (0: no check)")
    evidence_frames: int = Field(5, ge=1, le=30,
                                 description="frames whose best pair agrees before a live or flat verdict")
    max_jump: float = Field(0.10, gt=0, le=1,
                            description="homography residual (IOD) between consecutive frames beyond which the "
                                        "mesh failed: the frame is no evidence")
    sample_hz: float = Field(15.0, ge=0, le=120,
                             description="landmark frames per second per face: the thresholds were calibrated at 15, "
                                         "so a faster camera is sampled down to this rate (0: every frame)")
    min_sample_hz: float = Field(10.0, ge=0, le=120,
                                 description="warn (log and a liveness_rate event) when faces get fewer landmark "
                                             "frames per second than this (under 95 %, at most once per 10 min; "
                                             "sample_hz when that is lower): under it fewer real people passed the "
                                             "prompted turn (measured); 0: never warn")
    threads: int | None = Field(None, ge=1, le=16,
                                description="FaceMesh's interpreter threads (unset: 1 when FaceMesh runs on its "
                                            "worker thread beside the embedder, when the process may use more than one "
                                            "core; vision.threads on one core); the landmarks are the same at any "
                                            "count, only the cost changes (measured: docs/liveness.md, Cost)")
    window_s: float = Field(3.0, gt=0, le=30, description="frames up to this far apart are compared")
    challenge_after_s: float = Field(2.0, ge=0, le=60,
                                     description="prompt a head turn when no verdict came this long after the "
                                                 "track's first frame")
    challenge_timeout_s: float = Field(5.0, gt=0, le=60,
                                       description="the turn must happen within this many seconds of the prompt")
    min_turn: float = Field(0.15, gt=0, le=2,
                            description="change of the nose offset along the eye line (IOD) that counts as a turn")
    camera_mirrored: bool = Field(False, description="the frames are mirrored (the person's left is the image's left)")
    prompter: PrompterSettings = Field(default_factory=LogPrompterSettings,  # type: ignore[arg-type]
                                       description="how a head turn is asked for: log, gpio or mqtt")

    @property
    def passive_factor(self) -> float:
        """How far above its own jitter a track's parallax must stand before a prompted turn is seen:
        the larger of the two factors, none when ``noise_factor`` turns the check off."""
        return max(self.noise_factor, self.passive_noise_factor) if self.noise_factor > 0 else 0.0

    @property
    def rate_floor(self) -> float:
        """The landmark rate under which the loop warns: ``min_sample_hz``, or ``sample_hz`` when that is set
        lower (the warning would otherwise never stop; ``weakened`` says at start what a low ``sample_hz``
        costs). Both stay valid: this floor only decides a warning."""
        return min(self.min_sample_hz, self.sample_hz) if self.sample_hz > 0 else self.min_sample_hz

    def weakened(self) -> list[str]:
        """Warnings for guards turned off or loosened in the configuration (valid, but an attacker's help),
        for a sampling rate under what real people were measured to need, and for a prompter that
        ``passive`` mode never uses."""
        out = []
        if self.mode != "off" and 0 < self.sample_hz < self.min_sample_hz:
            out.append(f"liveness.sample_hz = {self.sample_hz:g} is under liveness.min_sample_hz "
                       f"({self.min_sample_hz:g}): with fewer landmark frames a second fewer real people answering the "
                       f"prompt were let in (2 of 10 at 5, 7 at 15); the rate warning uses {self.sample_hz:g} as its floor")
        if self.mode != "off" and self.noise_factor == 0:
            out.append("liveness.noise_factor = 0: landmark jitter (a phone screen's moire) can be read as parallax")
        if self.mode != "off" and self.max_live_ratio >= 1.0:
            out.append("liveness.max_live_ratio = 1: changes shaped like landmark noise can be read as parallax")
        if self.mode != "off" and self.planar_band_max == 0:
            out.append("liveness.planar_band_max = 0: a print of the upper face worn over a real face can pass as live")
        if self.mode == "passive" and self.prompter.type != "log":
            out.append(f"liveness.prompter is {self.prompter.type!r} but liveness.mode = passive never prompts: "
                       "set mode = challenge to use it")
        if self.mode != "off" and self.sample_hz == 0:
            out.append("liveness.sample_hz = 0: every frame is sampled, at whatever rate the camera gives; every "
                       "threshold was measured at 15 landmark frames a second")
        if self.mode != "off":
            off = {"noise_factor": self.noise_factor == 0, "max_live_ratio": self.max_live_ratio >= 1.0,
                   "planar_band_max": self.planar_band_max == 0}
            for table, word in ((CALIBRATED_FLOORS, "under"), (CALIBRATED_CEILINGS, "over")):
                for name, why in table.items():
                    value, calibrated = getattr(self, name), type(self).model_fields[name].default
                    if not off.get(name) and (value < calibrated if word == "under" else value > calibrated):
                        out.append(f"liveness.{name} = {value:g} is {word} the {calibrated:g} the attacks were "
                                   f"measured with (docs/liveness.md): {why}")
        return out

    @model_validator(mode="after")
    def _ordered(self) -> LivenessSettings:
        if self.flat_ratio >= self.live_ratio:
            raise ValueError(f"flat_ratio ({self.flat_ratio}) must be below live_ratio ({self.live_ratio})")
        if self.max_live_ratio <= self.live_ratio:
            raise ValueError(f"max_live_ratio ({self.max_live_ratio}) must be above live_ratio ({self.live_ratio}): "
                             f"no pair could count as parallax")
        if 0 < self.sample_hz < 5:
            raise ValueError(f"sample_hz ({self.sample_hz}) must be 0 (every frame) or at least 5: the cues need "
                             f"frames a fraction of a second apart")
        return self


# Thresholds whose defaults every attack figure was measured with: set lower, they let more through.
CALIBRATED_FLOORS = {
    "min_live_residual": "bent prints stayed only 12 % under 0.10 in calibration; lower, their depth can count "
                         "as parallax without a prompt",
    "challenge_live_residual": "it is what holds back bent and folded prints turned the prompted way",
    "evidence_frames": "fewer pairs decide, so one lucky pair of an artefact weighs more",
    "min_turn": "a picture tilted or turned a little can pass for the prompted turn",
    "noise_factor": "a phone screen's moire passed at 9.4 times its own jitter in calibration",
    "passive_noise_factor": "a phone photo and folded prints opened the door without a prompt at 12-17 times "
                            "their own jitter",
    "live_ratio": "changes a homography explains better can count as parallax",
    "planar_band_max": "the upper-face sheets read a median 0.0063 and a 95th percentile 0.0107 (real clips 0.0169 "
                       "and up); lower, more of them pass the eye band as live (at 0.001 a sheet worn over a "
                       "turning head does)",
}
# ... and those that let more through set higher (with their own warning at the value that turns them off).
CALIBRATED_CEILINGS = {
    "max_live_ratio": "changes shaped more like landmark noise can count as parallax",
    "challenge_timeout_s": "an artefact turned for longer has more chances to show parallax",
    "max_jump": "the rendered attacks had single mesh glitches up to 0.139 (real clips never over 0.061 from "
                "frame to frame); let in, they can add up to a parallax vote",
    "sample_hz": "a camera faster than 15 fps is sampled faster (at 30 fps, 30 and over sample every frame, as 0 "
                 "does), and the jitter between neighbouring frames and the evidence frames a second both "
                 "depend on the rate",
}

# The judge's configuration is the section itself.
LivenessConfig = LivenessSettings
