"""The keys of a site: an administrator's signing key, the offline root key, and the key list the root signs.

``kiosk admin keygen`` and ``root-keygen`` make them; ``keys sign`` (offline)
signs the list of administrator keys valid from now on, revoking those the
list it replaces had and it has not; ``keys publish`` puts it on the broker,
retained, unless the broker already holds one at least as new that kiosks take.
Neither dates a list more than a day ahead of this clock: kiosks refuse it.
See docs/keys.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.admin import site
from kiosk.admin.keylist import KEY_LIST_BYTES, ahead, check_replaces, read_key_list
from kiosk.admin.site import next_revision
from kiosk.admin.state import private_file
from kiosk.errors import ConfigError
from kiosk.mqtt.keys import (
    KeyListMsg,
    load_private_key,
    load_public_key,
    load_public_keys,
    sign_key_list,
    write_private_key,
)
from kiosk.mqtt.protocol import Signer, decode_json, validate

__all__ = ["cmd_keys_publish", "cmd_keys_sign", "cmd_root_keygen", "keygen", "load_signer"]


def keygen(path: Path) -> Path:
    """Private key (mode 600) at ``path``, public key at ``path.pub``; returns the public key's path."""
    return write_private_key(path, Ed25519PrivateKey.generate())


def load_signer(path: Path) -> Signer:
    return Signer(load_private_key(path))


def cmd_keys_sign(args: argparse.Namespace) -> int:
    """Offline: the root signs the list of administrator keys valid from now on."""
    root = load_signer(args.root_key)
    admins = load_public_keys(args.admin)
    revoked = set(args.revoke or ())
    now_ms = issued = int(time.time() * 1000)
    if args.previous is not None:
        prev = read_key_list(args.previous.read_bytes(), root.private.public_key(), args.site)
        revoked |= set(prev.revoked) | (set(prev.keys) - set(admins))
        if ahead(prev.issued_at_ms, now_ms):
            # kiosks with a synchronised clock refused it: dated above it, the new list would be refused too
            print(f"warning: {args.previous} is issued at {prev.issued_at_ms}, more than a day ahead of this clock "
                  f"({now_ms}): kiosks refuse it; the new list takes its revocations and is dated by this clock")
        else:
            issued = next_revision(issued, prev.issued_at_ms)
    revoked -= set(admins)
    payload = sign_key_list(root, args.site, admins, issued, frozenset(revoked),
                            {kid: name for kid, name in zip(admins, (p.stem for p in args.admin))})
    private_file(args.out)
    args.out.write_bytes(payload)
    print(f"key list for site {args.site} signed by root {root.key_id} at {issued}: admin keys {sorted(admins)}, "
          f"revoked {sorted(revoked)}; publish it with `kiosk admin keys publish {args.out}`")
    return 0


def cmd_keys_publish(args: argparse.Namespace) -> int:
    payload = args.file.read_bytes()
    msg: KeyListMsg = validate(KeyListMsg, decode_json(payload, KEY_LIST_BYTES))
    now_ms = int(time.time() * 1000)
    if ahead(msg.issued_at_ms, now_ms):
        raise ConfigError(f"{args.file} is issued at {msg.issued_at_ms}, more than a day ahead of this clock "
                          f"({now_ms}): kiosks would refuse it; check the clock of the machine that signed it and "
                          "sign a new one")
    root = load_public_key(args.root_pub) if args.root_pub else None
    if root is not None:
        read_key_list(payload, root, args.site)
    if msg.site != args.site:
        raise ConfigError(f"{args.file} is the key list of site {msg.site!r}, not {args.site!r}")
    topic = f"{args.prefix}/{args.site}/keys"
    broker = site.Broker(args)  # looked up at call time: the seam tests replace
    try:
        held = dict(broker.retained(topic)).get(topic)
        warning = check_replaces(held, msg.issued_at_ms, root, args.site, str(args.file), now_ms) if held else None
        broker.publish(topic, payload)
    finally:
        broker.close()
    if warning:
        print(f"warning: {warning}")
    print(f"published the key list of {msg.issued_at_ms}: {len(msg.keys)} admin keys, {len(msg.revoked)} revoked")
    return 0


def cmd_root_keygen(args: argparse.Namespace) -> int:
    pub = keygen(args.root_key)
    print(f"site root key written to {args.root_key} (keep it offline); install {pub} on every kiosk as "
          "the trust.root_key file")
    return 0
