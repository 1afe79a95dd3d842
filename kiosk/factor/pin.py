"""PIN verifiers: a slow, memory-hard KDF keyed with a per-site secret.

A PIN has few digits: 10,000 or 1,000,000 candidates. A plain salted hash of
one falls to a brute force in seconds, so the enrollment payload carries only
a verifier string::

    $kpin-argon2id$v=19$m=65536,t=3,p=1$k=<key id>$<salt>$<tag>
    $kpin-scrypt$ln=15,r=8,p=1$k=<key id>$<salt>$<tag>

``tag`` is Argon2id (RFC 9106) of the PIN with a random per-person ``salt``
and the site ``secret`` as Argon2's secret input ``K``; on installations whose
``cryptography`` has no Argon2 (before 44.0) it is scrypt over
HMAC-SHA256(secret, PIN). Without the secret no guess can be tested offline;
with it every guess costs one KDF evaluation. The parameters live in the
string, so they can be raised later without invalidating existing verifiers.
``k`` is a short fingerprint of the secret (HMAC of a constant, it reveals
nothing usable about the secret) so a kiosk holding a different secret than
the administrator reports that instead of rejecting every PIN as wrong.

A duress PIN has its own verifier; :func:`make_verifier_pair` gives both the
same salt so one KDF evaluation checks a typed PIN against both.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kiosk.errors import ConfigError, KioskError

logger = logging.getLogger(__name__)

SALT_BYTES = 16
TAG_BYTES = 32
MIN_SECRET_BYTES = 32
PIN_RE = re.compile(r"^[0-9]{4,12}$")


class VerifierError(KioskError, ValueError):
    """A verifier string is malformed or was made with another site secret."""


def argon2_available() -> bool:
    """True when the installed ``cryptography`` offers Argon2id (44.0 and later, OpenSSL with Argon2)."""
    try:
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

        Argon2id(salt=b"\0" * 16, length=32, iterations=1, lanes=1, memory_cost=8)
    except Exception:  # ImportError, or UnsupportedAlgorithm from a backend without it
        return False
    return True


@dataclass(frozen=True)
class KdfParams:
    """Cost of one verifier evaluation.

    Argon2id uses ``memory_kib``, ``iterations``, ``lanes``; scrypt uses ``log2_n``, ``r``, ``p``.
    """

    algorithm: Literal["argon2id", "scrypt"] = "argon2id"
    memory_kib: int = 65536  # Argon2id: 64 MiB (RFC 9106's second recommended option)
    iterations: int = 3
    lanes: int = 1
    log2_n: int = 16  # scrypt: N = 65536, r = 8: 64 MiB
    r: int = 8
    p: int = 1

    def __post_init__(self) -> None:
        if self.algorithm == "argon2id":
            if not (8 * self.lanes <= self.memory_kib <= 4 * 1024 * 1024 and 1 <= self.iterations <= 64
                    and 1 <= self.lanes <= 16):
                raise ValueError(f"Argon2id parameters out of range: m={self.memory_kib} KiB, t={self.iterations}, "
                                 f"p={self.lanes}; expected 8*p <= m <= 4 GiB, 1 <= t <= 64, 1 <= p <= 16")
        elif not (10 <= self.log2_n <= 22 and 1 <= self.r <= 32 and 1 <= self.p <= 16):
            raise ValueError(f"scrypt parameters out of range: ln={self.log2_n}, r={self.r}, p={self.p}; "
                             "expected 10 <= ln <= 22, 1 <= r <= 32, 1 <= p <= 16")

    @property
    def memory_bytes(self) -> int:
        return self.memory_kib * 1024 if self.algorithm == "argon2id" else 128 * self.r * (1 << self.log2_n)

    def encode(self) -> str:
        if self.algorithm == "argon2id":
            return f"v=19$m={self.memory_kib},t={self.iterations},p={self.lanes}"
        return f"ln={self.log2_n},r={self.r},p={self.p}"


def default_params() -> KdfParams:
    """Argon2id when available, else scrypt of the same memory (see ``benchmarks/pin_kdf.py`` for their cost)."""
    return KdfParams() if argon2_available() else KdfParams(algorithm="scrypt")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def key_id(secret: bytes) -> str:
    """A fingerprint that tells two secrets apart (not a hash of the secret: HMAC of a constant)."""
    return hmac.new(secret, b"kiosk-pin-secret-id", hashlib.sha256).hexdigest()[:8]


def _check_secret(secret: bytes) -> None:
    if len(secret) < MIN_SECRET_BYTES:
        raise VerifierError(f"the PIN secret must be at least {MIN_SECRET_BYTES} random bytes, got {len(secret)}; "
                            "make one with: head -c 32 /dev/urandom > pin.secret")


def derive(pin: str, salt: bytes, secret: bytes, params: KdfParams) -> bytes:
    """The KDF itself: the slow part, ``params`` decide how slow."""
    _check_secret(secret)
    data = pin.encode("utf-8")
    if params.algorithm == "argon2id":
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

        kdf = Argon2id(salt=salt, length=TAG_BYTES, iterations=params.iterations, lanes=params.lanes,
                       memory_cost=params.memory_kib, secret=secret)
        return kdf.derive(data)
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    keyed = hmac.new(secret, b"kiosk-pin-v1\0" + data, hashlib.sha256).digest()
    return Scrypt(salt=salt, length=TAG_BYTES, n=1 << params.log2_n, r=params.r, p=params.p).derive(keyed)


def _validate_pin(pin: str) -> None:
    if not PIN_RE.match(pin):
        raise ValueError(f"a PIN is 4 to 12 digits, got {len(pin)} characters"
                         + ("" if pin.isdigit() else " including non-digits"))


def make_verifier(pin: str, secret: bytes, params: KdfParams | None = None, salt: bytes | None = None) -> str:
    """The verifier string for ``pin`` (administrator side). A fresh random salt unless one is given."""
    _validate_pin(pin)
    params = params or default_params()
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    if len(salt) < 16:
        raise ValueError(f"salt must be at least 16 bytes, got {len(salt)}")
    tag = derive(pin, salt, secret, params)
    return f"$kpin-{params.algorithm}${params.encode()}$k={key_id(secret)}${_b64(salt)}${_b64(tag)}"


def make_verifier_pair(pin: str, duress_pin: str, secret: bytes, params: KdfParams | None = None) -> tuple[str, str]:
    """Normal and duress verifiers sharing one salt, so checking a typed PIN against both costs one KDF."""
    if pin == duress_pin:
        raise ValueError("the duress PIN must differ from the normal PIN")
    params = params or default_params()
    salt = os.urandom(SALT_BYTES)
    return make_verifier(pin, secret, params, salt), make_verifier(duress_pin, secret, params, salt)


@dataclass(frozen=True)
class ParsedVerifier:
    params: KdfParams
    key_id: str
    salt: bytes
    tag: bytes


_ARGON = re.compile(r"^\$kpin-argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$k=([0-9a-f]{8})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$")
_SCRYPT = re.compile(r"^\$kpin-scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$k=([0-9a-f]{8})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$")


def parse_verifier(verifier: str) -> ParsedVerifier:
    try:
        if m := _ARGON.match(verifier):
            params = KdfParams("argon2id", memory_kib=int(m[1]), iterations=int(m[2]), lanes=int(m[3]))
        elif m := _SCRYPT.match(verifier):
            params = KdfParams("scrypt", log2_n=int(m[1]), r=int(m[2]), p=int(m[3]))
        else:
            raise ValueError("no known prefix")
        salt, tag = _unb64(m[5]), _unb64(m[6])
    except ValueError as exc:
        raise VerifierError(f"not a PIN verifier ({exc}): expected '$kpin-argon2id$v=19$m=..,t=..,p=..$k=..$salt$tag' "
                            "or '$kpin-scrypt$...'; re-enroll the PIN with the admin tool") from exc
    if len(salt) < 16 or len(tag) != TAG_BYTES:
        raise VerifierError(f"PIN verifier has a {len(salt)}-byte salt and a {len(tag)}-byte tag; expected >= 16 and "
                            f"{TAG_BYTES}; re-enroll the PIN")
    return ParsedVerifier(params, m[4], salt, tag)


def match(pin: str, verifiers: list[str], secret: bytes) -> list[bool]:
    """Which verifiers ``pin`` satisfies. One KDF per distinct (parameters, salt); every tag is compared, in constant time.

    Raises :class:`VerifierError` when a verifier is malformed or was made with another secret.
    """
    parsed = [parse_verifier(v) for v in verifiers]
    mine = key_id(secret)
    for p in parsed:
        if not hmac.compare_digest(p.key_id, mine):
            raise VerifierError(f"PIN verifier was made with site secret {p.key_id}, this kiosk holds {mine}: "
                                "install the same kiosk-pin-secret on the kiosks and the admin tool")
    if not PIN_RE.match(pin):
        # Still spend one KDF, so the time taken does not tell a malformed entry from a wrong PIN.
        if parsed:
            derive("0000", parsed[0].salt, secret, parsed[0].params)
        return [False] * len(parsed)
    derived: dict[tuple[KdfParams, bytes], bytes] = {}
    result = []
    for p in parsed:
        key = (p.params, p.salt)
        if key not in derived:
            derived[key] = derive(pin, p.salt, secret, p.params)
        result.append(hmac.compare_digest(derived[key], p.tag))
    return result


def check(pin: str, verifier: str, secret: bytes) -> bool:
    """True when ``pin`` is the PIN ``verifier`` was made from (constant-time comparison)."""
    return match(pin, [verifier], secret)[0]


def read_secret(path: Path) -> bytes:
    """The site's PIN secret from a file (a systemd credential on kiosks)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the PIN secret {path}: {exc.strerror}; create it with "
                          f"'head -c 32 /dev/urandom > {path}' (the same file on every kiosk of the site and "
                          "on the admin workstation) or set [second_factor] pin_secret_file") from exc
    if len(data) < MIN_SECRET_BYTES:
        raise ConfigError(f"the PIN secret {path} holds {len(data)} bytes, expected at least {MIN_SECRET_BYTES} random "
                          "bytes; create it with 'head -c 32 /dev/urandom'")
    return data
