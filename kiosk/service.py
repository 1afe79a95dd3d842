"""``kiosk run``: wires config -> models -> store -> door -> camera -> loop, and tears down in reverse.

The door is locked at start, on exit, on SIGTERM/SIGINT and on any unhandled
error; systemd hears READY=1 once models and camera are up, WATCHDOG=1 from
the processing loop, STATUS= on state changes and STOPPING=1 on the way out.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from contextlib import ExitStack
from types import FrameType
from typing import Any

from kiosk.artifacts import models_dir
from kiosk.camera.capture import Capture
from kiosk.camera.factory import SIMULATED, make_source
from kiosk.camera.replay import SimClock
from kiosk.camera.watchdog import FrameWatchdog
from kiosk.config import DoorSettings, Settings
from kiosk.decision import DecisionConfig, DecisionEngine, MultiFacePolicy
from kiosk.door import Door, DoorTiming, build_door, pin_factory
from kiosk.door.timer import DoorTimerSettings, Ticker, door_timer
from kiosk.events import EventSink
from kiosk.factor.bridge import build_bridge, factor_required, one_to_one
from kiosk.liveness.background import mesh_threads, second_core
from kiosk.loop import KioskLoop
from kiosk.mqtt.trust import SiteTrust
from kiosk.policy.door import DoorLevel
from kiosk.sdnotify import Notifier, watchdog_interval_s
from kiosk.store import ERASURE_RETRY_S, Store, load_key
from kiosk.track import Tracker
from kiosk.trustwatch import TrustWatch
from kiosk.vision.pipeline import build_pipeline
from kiosk.vision.quality import QualityConfig

logger = logging.getLogger(__name__)


def peak_rss_mib() -> float | None:
    """This process's peak resident memory (VmHWM; Linux), in MiB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        pass
    return None


def lock_relay(d: DoorSettings) -> None:
    """Drive the relay to its locked level and exit (systemd's ExecStopPost, after any kind of stop)."""
    from gpiozero import OutputDevice

    relay = OutputDevice(d.relay_pin, active_high=d.active_high, initial_value=False,
                         pin_factory=pin_factory(d.pin_factory))
    relay.off()
    logger.info("relay on %s driven to locked", d.relay_pin)
    relay.close()


def open_store(settings: Settings, fingerprint: str, events: EventSink | None = None) -> tuple[Store, SiteTrust]:
    """The encrypted store and the site trust that verifies every record in it (keys, snapshot, clock)."""
    store = Store(settings.store.path, load_key(settings.store.key_file), fingerprint, on_event=events)
    trust = SiteTrust.from_files(store, settings.site, settings.trust, settings.mqtt.admin_keys)
    return store, trust


def build_door_from(settings: Settings, clock: Any, events: EventSink, factory: Any) -> Door:
    d = settings.door
    return build_door(d.relay_pin, active_high=d.active_high, timing=DoorTiming(d.unlock_s, d.held_open_s),
                      clock=clock, emit=events, contact_pin=d.contact_pin, exit_pin=d.exit_pin, pin_factory=factory,
                      contact_active_means_closed=d.contact_active_means_closed)


def build_liveness(settings: Settings, clock: Any, factory: Any, mqtt: Any, stack: ExitStack,
                   worker: bool | None = None) -> Any:
    """FaceMesh and the liveness judge with its prompter, or None when liveness is off (with a loud warning).
    ``worker``: whether the loop runs FaceMesh on its worker thread (None: ``second_core()``), which sets
    FaceMesh's default thread count."""
    from kiosk.liveness import LivenessJudge, build_landmarker, build_prompter
    from kiosk.liveness.prompters import active_low_warning
    from kiosk.liveness.settings import GpioPrompterSettings

    lv = settings.liveness
    if lv.mode == "off":
        logger.warning("liveness.mode = off: a printed photo or a phone screen of an enrolled person can open "
                       "this door")
        if isinstance(lv.prompter, GpioPrompterSettings) and (warning := active_low_warning(lv.prompter)):
            logger.warning(warning)  # not built with liveness off: its pins are never driven
        return None
    for warning in lv.weakened():
        logger.warning(warning)
    v = settings.vision
    threads = mesh_threads(lv.threads, v.threads, second_core() if worker is None else worker)
    landmarker = build_landmarker(runtime=v.runtime, threads=threads, root=settings.models_dir or models_dir())
    publish = None
    if mqtt is not None:
        def publish(topic: str, payload: bytes) -> None:
            if not mqtt.kiosk.connected.is_set():  # said, not dropped: the person at the door sees no prompt
                raise ConnectionError("not connected to the broker")
            mqtt.kiosk.publish_state(topic, payload.decode(), retain=False)
    topic = f"{settings.mqtt.prefix}/{settings.site}/{settings.device}/prompt"
    prompter = build_prompter(lv, publish=publish, topic=topic, pin_factory=factory)
    stack.callback(prompter.close)
    logger.info("liveness: %s mode, prompts by %s", lv.mode, lv.prompter.type)
    judge = LivenessJudge(lv, clock, prompter)
    if mqtt is not None and lv.prompter.type == "mqtt":
        mqtt.kiosk.on_connected.append(judge.repeat_prompt)  # a display sees what is asked now, not what was
    return landmarker, judge


def decision_config(settings: Settings, *, liveness: bool) -> DecisionConfig:
    dc = settings.decision
    return DecisionConfig(dc.frames_to_grant, dc.window_s, MultiFacePolicy(dc.multi_face), dc.cooldown_s,
                          dc.lockout_attempts, dc.lockout_window_s, dc.lockout_s, dc.deny_event_interval_s,
                          margin=settings.policy.margin, fuse_frames=dc.fuse_frames, same_face=dc.same_face,
                          face_change=dc.face_change,
                          lockout_ceiling=dc.lockout_ceiling, regrant_after_s=dc.regrant_after_s, liveness=liveness)


def run_service(settings: Settings, *, until_end: bool = False, stop: threading.Event | None = None,
                notifier: Notifier | None = None) -> dict[str, Any]:
    stop = stop or threading.Event()
    notifier = notifier or Notifier()
    started = time.monotonic()
    simulated = settings.camera.type in SIMULATED
    clock: Any = SimClock() if simulated else time.monotonic

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s: locking and stopping", signal.Signals(signum).name)
        stop.set()

    door_ref: list[Door] = []

    def on_abort(signum: int, _frame: FrameType | None) -> None:
        # systemd's watchdog sends SIGABRT to a stalled service: lock before dying.
        # (If the main thread is stuck in C code this never runs; ExecStopPost's
        # `kiosk door lock` then drives the relay to locked after the process is gone.)
        for d in door_ref:
            d.lock("watchdog")
        signal.signal(signal.SIGABRT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGABRT)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGABRT, on_abort)

    with ExitStack() as stack:
        stack.callback(notifier.close)
        notifier.status("loading models")
        pipeline, card = build_pipeline(settings.vision.model, detector=settings.vision.detector,
                                        runtime=settings.vision.runtime, threads=settings.vision.threads,
                                        delegate=settings.vision.delegate, root=settings.models_dir or models_dir())
        policy = settings.policy
        if settings.vision.threshold is not None and policy.threshold is None:
            policy = policy.model_copy(update={"threshold": settings.vision.threshold})
        events = EventSink(settings.events.audit_log, device=settings.device, rotation=settings.events.rotation)
        stack.callback(events.close)
        store, trust = open_store(settings, card.fingerprint, events)
        stack.callback(store.close)
        level = DoorLevel(policy, lambda: len(store.gallery()))
        threshold = level.threshold
        events.publishers.append(lambda e: notifier.status(f"door {e['type'][5:]} ({e.get('reason', '')})")
                                 if e["type"] in ("door_unlocked", "door_locked") else None)
        mqtt = None
        if settings.mqtt.enabled:
            from kiosk.mqtt.wiring import MqttSide

            mqtt = MqttSide(settings, store, events, trust=trust)
        factory = pin_factory(settings.door.pin_factory)
        door = build_door_from(settings, clock, events, factory)
        door_ref.append(door)
        stack.callback(door.close)  # runs before events/store close: the lock is the first thing undone
        mesh_worker = second_core()  # one decision for FaceMesh's thread count and the loop's worker
        liveness = build_liveness(settings, clock, factory, mqtt, stack, worker=mesh_worker)
        engine = DecisionEngine(decision_config(settings, liveness=liveness is not None), clock, is_valid=store.is_valid,
                                threshold=threshold, threshold_1to1=level.one_to_one,
                                second_factor=factor_required(settings.second_factor),
                                verify=one_to_one(store.gallery))
        bridge = build_bridge(settings, engine, store, events, factory, clock)
        timer = door_timer(door, DoorTimerSettings(timer_period_s=settings.door.timer_period_s))
        timer.start()
        stack.callback(timer.stop, 1.0)
        cw = settings.camera_watchdog
        # replays define their own time and repeat still frames: the frame-age watchdog is for live cameras
        watchdog = (FrameWatchdog(cw, time.monotonic, events, on_lost=lambda: door.hold("camera_lost"),
                                  on_restored=lambda: door.release("camera_lost"))
                    if cw.enabled and not simulated else None)
        checker = Ticker(watchdog.check, cw.check_period_s, name="camera-watchdog") if watchdog is not None else None
        capture = Capture(make_source(settings.camera, clock if simulated else None), events, lockstep=simulated,
                          watchdog=watchdog)
        q = settings.quality
        mqtt_started = threading.Event()

        def healthy() -> bool:
            """What the systemd watchdog depends on besides the loop itself."""
            ok = timer.healthy()
            if watchdog is not None and checker is not None:
                ok = ok and watchdog.healthy_for_watchdog() and checker.healthy()
            if bridge is not None:
                ok = ok and bridge.alive()
            if mqtt is not None and mqtt_started.is_set():
                ok = ok and mqtt.alive()  # a dead sync thread means a restart, not a silent kiosk
            return ok

        trust_watch = TrustWatch(trust, store, events)
        trust_watch.check()
        trust_ticker = Ticker(trust_watch.check, 30.0, name="trust-watch")
        trust_ticker.start()
        stack.callback(trust_ticker.stop, 1.0)
        store.tick()  # an erasure the last run left blocked is finished before the door is ready
        store_ticker = Ticker(store.tick, ERASURE_RETRY_S, name="store-erasure")
        store_ticker.start()
        stack.callback(store_ticker.stop, 1.0)
        loop = KioskLoop(capture, pipeline, store.gallery, threshold, engine, door, events,
                         QualityConfig(q.min_face_px, q.min_sharpness, q.max_outside, q.max_yaw),
                         notifier=notifier, watchdog_s=watchdog_interval_s(), liveness=liveness, mesh_worker=mesh_worker,
                         tracker=Tracker(max_gap_s=settings.decision.track_gap_s), healthy=healthy)
        if mqtt is not None:
            mqtt.kiosk.on_applied = lambda: logger.debug("store holds %d people", store.count())
            mqtt.start(lambda: {**loop.stats.as_dict(), **capture.stats(), "events": dict(events.counts),
                                "security_level": level.as_dict(), **trust_watch.stats(),
                                "peak_rss_mib": peak_rss_mib()})
            stack.callback(mqtt.stop, 0.8)  # after the door is locked; flushes what the broker takes in time
            if liveness is not None:
                stack.callback(liveness[1].prompter.clear)  # before mqtt.stop: no prompt left on a display
            mqtt_started.set()
        notifier.status("opening camera")
        capture.start()
        stack.callback(capture.stop, 1.0)
        if checker is not None:
            checker.start()
            stack.callback(checker.stop, 1.0)
        if bridge is not None:
            bridge.start()  # keypad/reader threads, then the polling thread
            stack.callback(bridge.close, 2.0)
        while not capture.healthy.wait(0.2):
            if stop.is_set():
                break
            notifier.watchdog()
        ready_s = time.monotonic() - started
        people = len(set(store.gallery().labels))
        notifier.ready(f"ready: {people} people enrolled, door locked")
        logger.info("ready in %.2f s: %d people enrolled; %s", ready_s, people, level.level.describe())
        events.emit("started", {"ready_s": round(ready_s, 3), "people": people, "model": card.sha256[:16]})
        try:
            loop.run(stop, until_end=until_end)
        finally:
            try:
                door.close()  # refuses unlocks, locks first, then detaches the inputs: nothing opens the door now
            finally:  # a fault detaching an input still tells systemd and the broker the kiosk stops
                notifier.stopping()
                events.emit("stopped", {"stats": {**loop.stats.as_dict(), **capture.stats(),
                                                  "peak_rss_mib": peak_rss_mib()}})
        return {"ready_s": ready_s, **loop.stats.as_dict(), **capture.stats()}
    raise AssertionError("unreachable")  # pragma: no cover
