"""The ``kiosk admin`` argument parser; each command lives with what it does.

``keys``: key generation and the root-signed key list; ``publish``: one
person's enrollment or deletion; ``republish``: every record and the
snapshot signed again (``republish``, ``sync``); ``overview``: what was
published and which kiosk acknowledged it (``list``, ``status``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from kiosk.admin.factor import add_factor_args
from kiosk.admin.keys import cmd_keys_publish, cmd_keys_sign, cmd_root_keygen, keygen, load_signer
from kiosk.admin.overview import cmd_list, cmd_status, status
from kiosk.admin.publish import (
    SyncIncompleteError,
    cmd_delete,
    cmd_enroll,
    print_report,
    publish_change,
    sign_enrollment,
)
from kiosk.admin.republish import cmd_republish, cmd_sync, resign

# the commands, importable from here as before
__all__ = ["SyncIncompleteError", "add_broker_args", "add_parser", "cmd_delete", "cmd_enroll", "cmd_keys_publish",
           "cmd_keys_sign", "cmd_list", "cmd_republish", "cmd_root_keygen", "cmd_status", "cmd_sync", "keygen",
           "load_signer", "print_report", "publish_change", "resign", "sign_enrollment", "status"]


def add_broker_args(p: argparse.ArgumentParser, signing: bool = True) -> None:
    env = os.environ.get
    p.add_argument("--host", default=env("KIOSK_ADMIN_HOST", "localhost"))
    p.add_argument("--port", type=int, default=int(env("KIOSK_ADMIN_PORT", "1883")))
    p.add_argument("--site", default=env("KIOSK_ADMIN_SITE", "default"))
    p.add_argument("--prefix", default=env("KIOSK_ADMIN_PREFIX", "kiosk"))
    p.add_argument("--tls", action="store_true")
    p.add_argument("--ca-file", type=Path)
    p.add_argument("--cert-file", type=Path)
    p.add_argument("--key-file", type=Path)
    p.add_argument("--username", default=env("KIOSK_ADMIN_USERNAME"))
    p.add_argument("--password-file", type=Path, default=env("KIOSK_ADMIN_PASSWORD_FILE"))
    p.add_argument("--root-pub", type=Path, default=env("KIOSK_ADMIN_ROOT_PUB"),
                   help="the site root's public key: verify the retained key list with it")
    if signing:
        p.add_argument("--signing-key", type=Path,
                       default=Path(env("KIOSK_ADMIN_KEY", "~/.config/kiosk-admin/admin.key")).expanduser())
        p.add_argument("--state", type=Path,
                       default=Path(env("KIOSK_ADMIN_STATE", "~/.local/share/kiosk-admin/admin.db")).expanduser(),
                       help="this administrator's record of what was published (mode 600)")
        p.add_argument("--snapshot-valid-h", type=float, default=float(env("KIOSK_ADMIN_SNAPSHOT_VALID_H", "72")),
                       help="hours a signed snapshot stays valid; `kiosk admin sync` must run more often")
        p.add_argument("--wait", type=float, default=30.0, help="seconds to wait for every known kiosk's ack")
        p.add_argument("--force", action="store_true",
                       help="sign the site snapshot even when kiosks' acks or retained records say someone holds a "
                            "newer change than it would (exit 18 otherwise): only after checking that they are "
                            "wrong, as they are not signed")


def add_parser(sub: Any, datetime_type: Any) -> None:
    admin = sub.add_parser("admin", help="administrator tools: keys, signed enrollments, the site snapshot")
    asub = admin.add_subparsers(dest="admin_command", required=True)
    kg = asub.add_parser("keygen", help="make an administrator's Ed25519 signing key (KEY and KEY.pub)")
    kg.add_argument("--signing-key", type=Path, required=True)
    kg.set_defaults(handler=lambda a: print(f"public key: {keygen(a.signing_key)} (add it to the site's key list "
                                            "with `kiosk admin keys sign`, or copy it into the kiosks' "
                                            "admin-keys folder when no root key is used)") or 0)
    rk = asub.add_parser("root-keygen", help="make the site root key (offline; kiosks pin ROOT.pub)")
    rk.add_argument("--root-key", type=Path, required=True)
    rk.set_defaults(handler=cmd_root_keygen)

    keys = asub.add_parser("keys", help="the root-signed list of administrator keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    ks = ksub.add_parser("sign", help="offline: sign the list of administrator keys valid from now on")
    ks.add_argument("--root-key", type=Path, required=True)
    ks.add_argument("--site", default=os.environ.get("KIOSK_ADMIN_SITE", "default"))
    ks.add_argument("--admin", type=Path, action="append", required=True, help="an administrator's .pub/.pem (repeat)")
    ks.add_argument("--revoke", action="append", help="key id to revoke (repeat)")
    ks.add_argument("--previous", type=Path, help="the list this one replaces: keys it had and this one has not "
                                                  "are revoked")
    ks.add_argument("--out", type=Path, required=True)
    ks.set_defaults(handler=cmd_keys_sign)
    kp = ksub.add_parser("publish", help="publish a signed key list, retained")
    kp.add_argument("file", type=Path)
    add_broker_args(kp, signing=False)
    kp.set_defaults(handler=cmd_keys_publish)

    en = asub.add_parser("enroll", help="embed 3-10 photos, sign, publish, re-sign the snapshot, wait for the kiosks")
    en.add_argument("--id", required=True)
    en.add_argument("--name", required=True)
    en.add_argument("--valid-from", type=datetime_type)
    en.add_argument("--valid-until", type=datetime_type)
    en.add_argument("--model", type=Path, help="the same int8 model the kiosks run")
    en.add_argument("photos", type=Path, nargs="+")
    add_factor_args(en)
    add_broker_args(en)
    en.set_defaults(handler=cmd_enroll)

    de = asub.add_parser("delete", help="publish a signed deletion, re-sign the snapshot, wait for the kiosks")
    de.add_argument("--id", required=True)
    add_broker_args(de)
    de.set_defaults(handler=cmd_delete)

    sy = asub.add_parser("sync", help="re-sign the site snapshot (run by kiosk-admin-sync.timer)")
    sy.add_argument("--every", type=float, help="keep running, re-signing every EVERY seconds")
    add_broker_args(sy)
    sy.set_defaults(handler=cmd_sync)

    for name, handler, text in (("list", cmd_list, "what this administrator published"),
                                ("republish", cmd_republish, "re-sign every record with the current key and publish"),
                                ("status", cmd_status, "which kiosk acknowledged which revision")):
        p = asub.add_parser(name, help=text)
        add_broker_args(p)
        if name == "status":
            p.add_argument("--json", action="store_true")
        p.set_defaults(handler=handler)
