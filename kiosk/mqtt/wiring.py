"""Building the kiosk's MQTT side from settings, and its stats publisher."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from kiosk.config import Settings
from kiosk.events import EventSink
from kiosk.mqtt.client import KioskMqtt, load_admin_keys, make_client
from kiosk.mqtt.homeassistant import discovery, state_updates
from kiosk.mqtt.topics import Topics
from kiosk.outbox import Outbox
from kiosk.store import Store

logger = logging.getLogger(__name__)


class MqttSide:
    def __init__(self, settings: Settings, store: Store, events: EventSink, client: Any = None) -> None:
        m = settings.mqtt
        self.topics = Topics(m.prefix, settings.site, settings.device)
        keys = load_admin_keys(m.admin_keys)
        if not keys:
            logger.warning("no administrator keys configured: every enrollment message will be refused")
        self.outbox = Outbox(m.outbox_path, m.outbox_max)
        client = client or make_client(f"kiosk-{settings.site}-{settings.device}", tls=m.tls, ca_file=m.ca_file,
                                       cert_file=m.cert_file, key_file=m.key_file, username=m.username,
                                       password_file=m.password_file)
        self.kiosk = KioskMqtt(client, m.host, m.port, self.topics, store, events, self.outbox, keys, m.keepalive_s)
        self.stats_interval_s = m.stats_interval_s
        self._ha = discovery(self.topics, m.homeassistant_prefix, settings.door.contact_pin is not None) \
            if m.homeassistant else {}
        self._stop = threading.Event()
        self._stats_thread: threading.Thread | None = None
        events.publishers.append(self.kiosk.publish_event)
        if m.homeassistant:
            events.publishers.append(self._publish_states)
            original = client.on_connect

            def on_connect(*args: Any) -> None:
                original(*args)
                for topic, payload in self._ha.items():
                    self.kiosk.publish_state(topic, payload)

            client.on_connect = on_connect

    def _publish_states(self, event: dict[str, Any]) -> None:
        for topic, payload in state_updates(self.topics, event):
            self.kiosk.publish_state(topic, payload)

    def start(self, stats: Callable[[], dict[str, Any]]) -> None:
        self.kiosk.start()

        def run() -> None:
            while not self._stop.wait(self.stats_interval_s):
                self.kiosk.publish_state(self.topics.stats, self.stats(stats()), retain=True)

        self._stats_thread = threading.Thread(target=run, name="mqtt-stats", daemon=True)
        self._stats_thread.start()

    def stats(self, base: dict[str, Any]) -> dict[str, Any]:
        return {**base, "outbox_pending": len(self.outbox), "outbox_dropped": self.outbox.dropped,
                "sync": dict(self.kiosk.counters), "mqtt_connected": self.kiosk.connected.is_set()}

    def stop(self, flush_timeout: float = 1.0) -> None:
        self._stop.set()
        self.kiosk.stop(flush_timeout)
        if self._stats_thread is not None:
            self._stats_thread.join(1.0)
        self.outbox.close()
