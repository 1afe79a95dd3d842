"""The kiosk's configuration: TOML file + ``KIOSK_`` environment variables + secrets.

Strict: an unknown key is an error naming the key and the file. Every field
has bounds and a description (``kiosk config check`` prints them resolved).
Secrets (store key, MQTT password) are files, read from systemd credentials
(``$CREDENTIALS_DIRECTORY``) by default, never values in the TOML.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from kiosk.camera.watchdog import CameraWatchdogSettings
from kiosk.door.pinnames import GpioPin, refuse_shared
from kiosk.errors import ConfigError
from kiosk.events import AuditRotation
from kiosk.factor.settings import SecondFactorSettings
from kiosk.liveness.settings import GpioPrompterSettings, LivenessSettings
from kiosk.mqtt.settings import SyncSettings, TrustSettings
from kiosk.policy.config import PolicyConfig

DEFAULT_CONFIG = Path("/etc/kiosk/kiosk.toml")
STATE_DIR = Path(os.environ.get("STATE_DIRECTORY", "/var/lib/kiosk"))


def credential(name: str, fallback: str) -> Path:
    """A systemd credential by name when running under systemd, else a fallback path."""
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    return Path(creds) / name if creds else Path(fallback)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReplayCamera(Section):
    type: Literal["replay"] = "replay"
    path: Path = Field(description="folder of images replayed in name order")
    fps: float = Field(15.0, gt=0, le=120, description="frames per second of the replay")
    loop: bool = Field(False, description="start over at the end instead of ending")


class OpenCVCamera(Section):
    type: Literal["opencv"] = "opencv"
    device: int | str = Field(0, description="V4L2 index, video file path or rtsp:// URL")
    width: int | None = Field(None, ge=160, le=4096, description="requested frame width")
    height: int | None = Field(None, ge=120, le=4096, description="requested frame height")


class PiCamera(Section):
    type: Literal["picamera2"] = "picamera2"
    width: int = Field(640, ge=160, le=4056, description="main stream width")
    height: int = Field(480, ge=120, le=3040, description="main stream height")
    camera_num: int = Field(0, ge=0, le=3, description="camera index on the Pi")


CameraSettings = Annotated[ReplayCamera | OpenCVCamera | PiCamera, Field(discriminator="type")]


class VisionSettings(Section):
    model: Path | None = Field(None, description="int8 embedder .tflite; default: the models folder's facenet_int8")
    detector: Literal["auto", "short", "full"] = Field(
        "auto", description="BlazeFace model: auto = full range, short range when it finds nothing")
    runtime: Literal["auto", "ai_edge_litert", "tflite_runtime"] = Field("auto", description="TFLite runtime")
    threads: int = Field(2, ge=1, le=16, description="interpreter threads")
    delegate: Literal["edgetpu"] | None = Field(None, description="load the Coral Edge TPU delegate")
    threshold: float | None = Field(None, ge=-1.0, le=1.0,
                                    description="experts: a fixed cosine threshold (same as policy.threshold); "
                                                "default: derived from policy.stranger_acceptance")


class DecisionSettings(Section):
    frames_to_grant: int = Field(3, ge=1, le=30, description="matching frames of one person needed to grant")
    window_s: float = Field(2.0, gt=0, le=30, description="those frames must fall within this many seconds")
    multi_face: Literal["deny", "largest"] = Field("deny", description="policy when a second face is in view")
    cooldown_s: float = Field(5.0, ge=0, le=600, description="ignore faces this long after a grant")
    lockout_attempts: int = Field(5, ge=1, le=100, description="denied approaches that trigger a lockout")
    lockout_window_s: float = Field(60.0, gt=0, le=3600, description="window for counting denied approaches")
    lockout_s: float = Field(60.0, ge=0, le=86400, description="how long a lockout lasts")
    deny_event_interval_s: float = Field(10.0, ge=0, le=3600, description="at most one denial event per reason per interval")
    fuse_frames: int = Field(15, ge=1, le=100, description="recent frames of one face fused into the probe")
    same_face: float = Field(0.5, ge=0, le=1, description="cosine at which two denied approaches count as one face")
    face_change: float = Field(0.5, ge=0.3, le=0.6,
                               description="cosine to the mean of a track's earlier frames below which its face is "
                                           "somebody else's (a print raised over a real face): the track restarts. "
                                           "Real faces stayed at 0.648 or above on the 25 real clips; prints over "
                                           "a real face scored under 0.2")
    lockout_ceiling: int = Field(20, ge=2, le=10_000,
                                 description="denied approaches of all faces within lockout_window_s that raise an alarm")
    regrant_after_s: float = Field(300.0, ge=0, le=86400,
                                   description="a person still in view after a grant is let in again only after this")
    track_gap_s: float = Field(1.0, gt=0, le=10, description="a face unseen this long has left (its approach ends)")


class QualitySettings(Section):
    min_face_px: float = Field(80.0, ge=20, le=2000, description="smallest face box side, frame pixels")
    min_sharpness: float = Field(20.0, ge=0, description="variance of the Laplacian of the crop")
    max_outside: float = Field(0.1, ge=0, le=1, description="fraction of the face box allowed outside the frame")
    max_yaw: float = Field(0.4, ge=0, le=2, description="nose offset from the eyes' midpoint, in eye distances")


class DoorSettings(Section):
    relay_pin: GpioPin = Field(17, description="GPIO of the lock relay (BCM number or gpiozero pin name)")
    active_high: bool = Field(True, description="relay energised by a high level")
    unlock_s: float = Field(5.0, gt=0, le=120, description="how long the door stays unlocked")
    contact_pin: GpioPin | None = Field(None, description="door contact input (optional)")
    contact_active_means_closed: bool = Field(True, description="contact input active (low, pull-up) = door closed")
    exit_pin: GpioPin | None = Field(None, description="request-to-exit button input (optional)")
    held_open_s: float = Field(30.0, gt=0, le=3600, description="alarm when the door stays open longer")
    pin_factory: Literal["auto", "mock"] = Field(
        "auto", description="auto: gpiozero's default; off a Raspberry Pi MockFactory with a warning; on a Pi without "
        "usable GPIO the kiosk refuses to start | mock: simulated relay")
    timer_period_s: float = Field(0.05, ge=0.005, le=0.1,
                                  description="longest wait of the door's relock timer thread between checks")

    @model_validator(mode="after")
    def _distinct_pins(self) -> DoorSettings:  # here too, since `kiosk door lock` may read this section alone
        refuse_shared(self.pins(), "the relay, contact and exit button need a pin each")
        return self

    def pins(self) -> list[tuple[str, int | str | None]]:
        return [("relay_pin", self.relay_pin), ("contact_pin", self.contact_pin), ("exit_pin", self.exit_pin)]


class StoreSettings(Section):
    path: Path = Field(STATE_DIR / "kiosk.db", description="SQLite enrollment store")
    key_file: Path = Field(default_factory=lambda: credential("kiosk-store-key", "/etc/kiosk/credentials/store.key"),
                           description="32-byte AES-GCM key (mode 0600 or a systemd credential)")


class EventsSettings(Section):
    audit_log: Path | None = Field(STATE_DIR / "audit.jsonl", description="every event as one JSON line")
    rotation: AuditRotation = Field(default_factory=AuditRotation, description="audit log size limit and kept files")


class MqttSettings(Section):
    enabled: bool = Field(False, description="sync enrollments and report events over MQTT")
    host: str = Field("localhost", min_length=1, description="broker host name")
    port: int = Field(1883, ge=1, le=65535, description="broker port (8883 with TLS, by convention)")
    prefix: str = Field("kiosk", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="first level of every topic")
    tls: bool = Field(False, description="TLS with CA verification")
    ca_file: Path | None = Field(None, description="CA certificate of the broker (default: system CAs)")
    cert_file: Path | None = Field(None, description="client certificate, for brokers that require one")
    key_file: Path | None = Field(None, description="client certificate's private key")
    username: str | None = Field(None, description="broker user name")
    password_file: Path | None = Field(
        default_factory=lambda: (credential("kiosk-mqtt-password", "") if os.environ.get("CREDENTIALS_DIRECTORY")
                                 else None),
        description="file holding the broker password (default: the systemd credential kiosk-mqtt-password)")
    admin_keys: list[Path] = Field(default_factory=lambda: [Path("/etc/kiosk/admin-keys")],
                                   description="Ed25519 public keys (PEM files or folders of them) of administrators")
    keepalive_s: int = Field(30, ge=5, le=600, description="MQTT keepalive")
    stats_interval_s: float = Field(60.0, ge=1, le=3600, description="how often to publish stats")
    outbox_path: Path = Field(STATE_DIR / "outbox.db", description="durable event queue")
    outbox_max: int = Field(10_000, ge=10, le=1_000_000, description="oldest events are dropped (and counted) beyond")
    homeassistant: bool = Field(False, description="publish Home Assistant MQTT discovery for the door")
    homeassistant_prefix: str = Field("homeassistant", description="Home Assistant discovery prefix")


class _TomlSettings(BaseSettings):
    """Settings read from the init arguments, the environment and ``toml_file``, in that order of precedence."""

    toml_file: ClassVar[Path | None] = None

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls.toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls.toml_file))
        return tuple(sources)


_T = TypeVar("_T", bound=_TomlSettings)


class DoorOnly(_TomlSettings):
    """The ``[door]`` section alone, every other one ignored: what ``kiosk door lock`` needs to drive the relay
    locked when the rest of the configuration does not load (an edit with a mistake, then a restart)."""

    model_config = SettingsConfigDict(extra="ignore", env_prefix="KIOSK_", env_nested_delimiter="__", frozen=True)

    # No default: a file whose [door] header is mistyped or missing must not send the lock to pin 17
    door: DoorSettings = Field(description="the [door] section, which must be there")


class Settings(_TomlSettings):
    model_config = SettingsConfigDict(extra="forbid", env_prefix="KIOSK_", env_nested_delimiter="__", frozen=True)

    device: str = Field("door1", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="this kiosk's name")
    site: str = Field("default", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="the site it belongs to")
    models_dir: Path | None = Field(None, description="folder of model artifacts; default $KIOSK_MODELS_DIR or models/")
    camera: CameraSettings = Field(default_factory=PiCamera, description="frame source")  # type: ignore[arg-type]
    camera_watchdog: CameraWatchdogSettings = Field(default_factory=CameraWatchdogSettings,
                                                    description="frame-age / frozen-camera watchdog")
    vision: VisionSettings = Field(default_factory=VisionSettings)
    decision: DecisionSettings = Field(default_factory=DecisionSettings)
    policy: PolicyConfig = Field(default_factory=PolicyConfig, description="security level: how sure the door must be")
    quality: QualitySettings = Field(default_factory=QualitySettings)
    liveness: LivenessSettings = Field(default_factory=LivenessSettings)
    second_factor: SecondFactorSettings = Field(default_factory=SecondFactorSettings)
    door: DoorSettings = Field(default_factory=DoorSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    trust: TrustSettings = Field(default_factory=TrustSettings, description="site root key and clock checks")
    events: EventsSettings = Field(default_factory=EventsSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings, description="refusal budgets and sync thread checks")

    @model_validator(mode="after")
    def _one_device_per_pin(self) -> Settings:
        """No two devices the kiosk builds share a GPIO, however each pin is spelt (``kiosk.door.pinnames``).
        The pins of a section that builds nothing (second factor or liveness off) do not count."""
        pins = [(f"door.{k}", p) for k, p in self.door.pins()]
        if self.second_factor.mode != "off":  # off: no keypad or reader is built (kiosk.factor.bridge)
            pins += [(f"second_factor.{k}", p) for k, p in self.second_factor.pins()]
        prompter = self.liveness.prompter
        if self.liveness.mode != "off" and isinstance(prompter, GpioPrompterSettings):
            pins += [(f"liveness.prompter.{k}", p) for k, p in prompter.pins()]
        refuse_shared(pins, "one device per GPIO")
        return self


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read the TOML file (when it exists, or when named explicitly) plus the environment."""
    return _load(Settings, path, overrides)


def load_door_settings(path: Path | None = None) -> DoorSettings:
    """The ``[door]`` section of the same file and environment, read on its own (``DoorOnly``)."""
    return _load(DoorOnly, path, {}).door


# Sections chosen by their ``type``: pydantic puts the type in an error's location, the file does not.
_TAGGED = {"prompter": {"log", "gpio", "mqtt"}, "camera": {"replay", "opencv", "picamera2"}}


def _key(loc: tuple[int | str, ...]) -> str:
    """An error's location as the file spells it: ``keypad_rows[3]``, and no section type tag."""
    parts: list[str] = []
    for k, part in enumerate(loc):
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1]}[{part}]"] if parts else [f"[{part}]"]
        elif not (k and part in _TAGGED.get(str(loc[k - 1]), ())):
            parts.append(str(part))
    return ".".join(parts) or "configuration"


def _load(cls: type[_T], path: Path | None, overrides: dict[str, Any]) -> _T:
    explicit = path is not None
    path = path or DEFAULT_CONFIG
    if explicit and not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    toml = path if path.is_file() else None
    if toml is not None:
        import tomllib

        try:
            tomllib.loads(toml.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{toml}: not valid TOML: {exc}") from exc

    bound = type(f"_Bound{cls.__name__}", (cls,), {"toml_file": toml})
    where = str(toml) if toml else "environment"
    try:
        return cast(_T, bound(**overrides))
    except ValidationError as exc:
        problems = "; ".join(f"{_key(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{where}: {problems}") from exc
    except SettingsError as exc:  # an environment variable that is not the JSON a list or section needs
        raise ConfigError(f"{where}: {exc}{': ' + str(exc.__cause__) if exc.__cause__ else ''}") from exc
