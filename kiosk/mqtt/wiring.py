"""Building the kiosk's MQTT side from settings, and its stats publisher."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from kiosk.config import Settings
from kiosk.events import EventSink
from kiosk.mqtt.client import KioskMqtt, load_admin_keys, make_client
from kiosk.mqtt.homeassistant import discovery, event_updates, state_updates
from kiosk.mqtt.seams import SyncStore, Trust
from kiosk.mqtt.settings import SyncSettings
from kiosk.mqtt.statictrust import StaticTrust
from kiosk.mqtt.topics import Topics
from kiosk.outbox import Outbox

logger = logging.getLogger(__name__)


class MqttSide:
    """The MQTT client, sync core and outbox of one kiosk. ``trust`` defaults to the fixed administrator keys
    of ``mqtt.admin_keys``; ``sync`` defaults to ``settings.sync`` when Settings has that section."""

    def __init__(self, settings: Settings, store: SyncStore, events: EventSink, client: Any = None,
                 trust: Trust | None = None, sync: SyncSettings | None = None) -> None:
        m = settings.mqtt
        self.topics = Topics(m.prefix, settings.site, settings.device)
        if trust is None:
            keys = load_admin_keys(m.admin_keys)
            if not keys:
                logger.warning("no administrator keys configured: every enrollment message will be refused")
            trust = StaticTrust(keys)
        sync = sync or getattr(settings, "sync", None) or SyncSettings()
        self.outbox = Outbox(m.outbox_path, m.outbox_max)
        client = client or make_client(f"kiosk-{settings.site}-{settings.device}", tls=m.tls, ca_file=m.ca_file,
                                       cert_file=m.cert_file, key_file=m.key_file, username=m.username,
                                       password_file=m.password_file)
        self.kiosk = KioskMqtt(client, m.host, m.port, self.topics, store, events, self.outbox, trust, m.keepalive_s,
                               settings=sync)
        self.stats_interval_s = m.stats_interval_s
        self._ha = discovery(self.topics, m.homeassistant_prefix, settings.door.contact_pin is not None) \
            if m.homeassistant else {}
        self._stop = threading.Event()
        self._stats_thread: threading.Thread | None = None
        events.publishers.append(self.kiosk.publish_event)
        if m.homeassistant:
            events.publishers.append(self._publish_states)
            self.kiosk.on_connected.append(self._publish_discovery)

    def alive(self) -> bool:
        """For the systemd watchdog: the MQTT network thread runs and calls back (see KioskMqtt.alive)."""
        return self.kiosk.alive()

    def _publish_discovery(self) -> None:
        for topic, payload in self._ha.items():
            self.kiosk.publish_state(topic, payload)

    def _publish_states(self, event: dict[str, Any]) -> None:
        for topic, payload in state_updates(self.topics, event):
            self.kiosk.publish_state(topic, payload)
        for topic, payload in event_updates(self.topics, event):
            self.kiosk.publish_state(topic, payload, retain=False)

    def start(self, stats: Callable[[], dict[str, Any]]) -> None:
        self.kiosk.start()

        def run() -> None:
            while not self._stop.wait(self.stats_interval_s):
                try:
                    self.kiosk.publish_state(self.topics.stats, self.stats(stats()), retain=True)
                except Exception:  # a failing stats source must not end the publisher
                    logger.exception("stats could not be published")

        self._stats_thread = threading.Thread(target=run, name="mqtt-stats", daemon=True)
        self._stats_thread.start()

    def stats(self, base: dict[str, Any]) -> dict[str, Any]:
        return {**base, "outbox_pending": len(self.outbox), "outbox_dropped": self.outbox.dropped,
                "outbox_dropped_by_class": self.outbox.dropped_by_class, "sync": self.kiosk.counters,
                "mqtt_connected": self.kiosk.connected.is_set(), "mqtt_alive": self.kiosk.alive()}

    def stop(self, flush_timeout: float = 1.0) -> None:
        self._stop.set()
        self.kiosk.stop(flush_timeout)
        if self._stats_thread is not None:
            self._stats_thread.join(1.0)
        self.outbox.close()
