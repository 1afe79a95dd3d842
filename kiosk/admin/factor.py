"""``kiosk admin enroll``'s second factor: PIN verifiers, user code and cards for the signed enrollment.

The PIN and the duress PIN are read from a prompt (``--pin-prompt``) or from
files (``--pin-file``/``--duress-pin-file``, for automation), never from the
command line, where ``ps`` and the shell history would show them. Only the
verifiers leave this machine: a slow KDF keyed with the site secret
(``--pin-secret``, the same file the kiosks hold as ``kiosk-pin-secret``),
with the parameters of ``[second_factor.kdf]`` in ``--config``. A person
given a PIN but no duress PIN gets a duress verifier of a random PIN that
nobody knows, so a published payload does not tell who has a duress PIN.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import re
import secrets
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kiosk.errors import ConfigError
from kiosk.factor.pin import KdfParams, default_params, make_verifier_pair, read_secret
from kiosk.factor.settings import KdfSettings
from kiosk.mqtt.protocol import USER_CODE, check_card

logger = logging.getLogger(__name__)

RANDOM_DURESS_DIGITS = 12  # as long as a PIN can be: nobody types it by chance


def add_factor_args(p: argparse.ArgumentParser) -> None:
    env = os.environ.get
    g = p.add_argument_group("second factor (docs/second_factor.md)")
    g.add_argument("--pin-prompt", action="store_true", help="ask for the PIN and the duress PIN (not echoed)")
    g.add_argument("--pin-file", type=Path, help="read the PIN from this file (automation; never on the command line)")
    g.add_argument("--duress-pin-file", type=Path, help="read the duress PIN from this file")
    g.add_argument("--user-code", help="digits typed before the PIN to claim this person (an identifier, not secret)")
    g.add_argument("--card", action="append", default=[], help="card number as h10301:FACILITY:NUMBER or "
                                                               "w34:FACILITY:NUMBER (repeat for several)")
    g.add_argument("--pin-secret", type=Path,
                   default=Path(env("KIOSK_ADMIN_PIN_SECRET", "~/.config/kiosk-admin/pin.secret")).expanduser(),
                   help="the site's PIN secret (the same file as the kiosks' kiosk-pin-secret credential)")
    g.add_argument("--config", type=Path, default=env("KIOSK_ADMIN_CONFIG"),
                   help="a kiosk TOML whose [second_factor.kdf] sets the cost of new verifiers")


def kdf_params(config: Path | None) -> KdfParams:
    """``[second_factor.kdf]`` of a kiosk TOML; the defaults (Argon2id, else scrypt) without one."""
    if config is None:
        return default_params()
    try:
        data = tomllib.loads(config.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the KDF parameters from {config}: {exc}") from exc
    table = data.get("second_factor", {}).get("kdf")
    if table is None:
        return default_params()
    try:
        return KdfSettings.model_validate(table).params()
    except ValidationError as exc:
        raise ConfigError(f"[second_factor.kdf] in {config} is invalid: {exc.errors()[0]['msg']} "
                          f"({'.'.join(str(p) for p in exc.errors()[0]['loc'])})") from exc


def _read_pin(path: Path, what: str) -> str:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} from {path}: {exc.strerror}") from exc
    return text.strip()


def _prompt_pins(ask: Callable[[str], str]) -> tuple[str, str | None]:
    pin = ask("PIN (4-12 digits): ")
    if ask("PIN again: ") != pin:
        raise ConfigError("the two PINs typed differ; nothing was published")
    duress = ask("duress PIN (opens the door and raises a silent alarm; empty: none): ")
    if duress and ask("duress PIN again: ") != duress:
        raise ConfigError("the two duress PINs typed differ; nothing was published")
    return pin, duress or None


def factor_fields(args: argparse.Namespace, ask: Callable[[str], str] = getpass.getpass,
                  taken: dict[str, str] | None = None) -> dict[str, Any]:
    """The enrollment's second-factor fields from the command line (empty when none was asked for).

    ``taken`` maps codes and cards (``code:1001``, ``card:h10301:1:2``) this
    administrator already enrolled to someone else: reusing one is refused,
    since a kiosk lets a code or card held by two people name nobody.
    """
    fields: dict[str, Any] = {}
    if args.user_code is not None:
        if not re.match(USER_CODE, args.user_code):
            raise ConfigError(f"--user-code must be 1-12 digits, got {len(args.user_code)} characters")
        fields["user_code"] = args.user_code
    cards: list[str] = []
    for card in args.card or ():
        try:
            cards.append(check_card(card))
        except ValueError as exc:
            raise ConfigError(f"--card: {exc}") from exc
    if len(set(cards)) != len(cards):
        raise ConfigError("--card lists the same card twice")
    if cards:
        fields["cards"] = tuple(cards)
    for key in [f"code:{args.user_code}"] * (args.user_code is not None) + [f"card:{c}" for c in cards]:
        holder = (taken or {}).get(key)
        if holder is not None and holder != args.id:
            raise ConfigError(f"{key.replace(':', ' ', 1)} is already enrolled to {holder}; re-enroll {holder} "
                              "without it first (a kiosk lets a code or card held by two people name nobody)")
    if args.pin_prompt and (args.pin_file or args.duress_pin_file):
        raise ConfigError("give the PIN either with --pin-prompt or with --pin-file, not both")
    if args.duress_pin_file and not args.pin_file:
        raise ConfigError("--duress-pin-file needs --pin-file: a duress PIN goes with a normal PIN")
    if args.pin_prompt:
        pin, duress = _prompt_pins(ask)
    elif args.pin_file:
        pin = _read_pin(args.pin_file, "PIN")
        duress = _read_pin(args.duress_pin_file, "duress PIN") if args.duress_pin_file else None
    else:
        return fields
    if duress is None:
        duress = "".join(secrets.choice("0123456789") for _ in range(RANDOM_DURESS_DIGITS))
    secret = read_secret(args.pin_secret)
    try:
        fields["pin_verifier"], fields["duress_verifier"] = make_verifier_pair(pin, duress, secret,
                                                                               kdf_params(args.config))
    except ValueError as exc:  # the message never includes the PIN
        raise ConfigError(f"PIN refused: {exc}") from exc
    return fields


def taken_codes(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Codes and cards in the records this administrator published (latest of each person, deleted left out)."""
    out: dict[str, str] = {}
    for r in rows:
        if r["deleted"] or not r["payload"]:
            continue
        try:
            body = json.loads(r["payload"])
        except ValueError:
            continue
        if body.get("user_code"):
            out[f"code:{body['user_code']}"] = r["person_id"]
        for card in body.get("cards") or ():
            out[f"card:{card}"] = r["person_id"]
    return out
