"""Presentation-attack defence: is the face in front of the camera a real, three-dimensional head?

See docs/liveness.md. Nothing here builds an interpreter, a pin or a client at import time.
"""

from .cues import Cue, LivenessResult, Observation, Verdict
from .judge import LivenessJudge
from .landmarks import Landmarker, build_landmarker
from .prompters import GpioPrompter, LogPrompter, MqttPrompter, Prompter, build_prompter
from .settings import LivenessConfig, LivenessSettings

__all__ = [
    "Cue", "GpioPrompter", "Landmarker", "LivenessConfig", "LivenessJudge", "LivenessResult", "LivenessSettings",
    "LogPrompter", "MqttPrompter", "Observation", "Prompter", "Verdict", "build_landmarker", "build_prompter",
]
