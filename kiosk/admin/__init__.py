"""``kiosk admin``: the administrator's side of enrollment sync.

Signs enrollments and deletions with an Ed25519 administrator key and
publishes them retained (QoS 1); after every change it publishes, retained,
a re-signed site snapshot (each person's current revision, deleted people
included), and ``kiosk admin sync`` re-signs it on a timer so it never
expires. Before publishing it reads the retained state, so two
administrators never reuse a revision, and ``enroll``/``delete`` wait for
every known kiosk's ack and name the silent ones. The site root key
(``root-keygen``, kept offline) signs the list of administrator keys
(``keys sign``), which ``keys publish`` puts on the broker. See docs/keys.md.
"""

from __future__ import annotations

from kiosk.admin.commands import add_broker_args, add_parser
from kiosk.admin.keys import keygen, load_signer
from kiosk.admin.overview import status
from kiosk.admin.publish import SyncIncompleteError, publish_change, sign_enrollment
from kiosk.admin.republish import cmd_sync, resign
from kiosk.admin.site import Broker, BrokerError, SiteView, collect_acks, next_revision, read_site
from kiosk.admin.state import AdminState

__all__ = ["AdminState", "Broker", "BrokerError", "SiteView", "SyncIncompleteError", "add_broker_args", "add_parser",
           "cmd_sync", "collect_acks", "keygen", "load_signer", "next_revision", "publish_change", "read_site",
           "resign", "sign_enrollment", "status"]
