"""The kiosk's enrollment store: SQLite (WAL), the administrators' signed records encrypted at rest.

What the store trusts is the signed record, not its own columns. Each row
keeps the exact payload an administrator signed (AES-GCM encrypted, so no
embedding is readable without the store key), and whenever the gallery is
loaded every row is decrypted and verified again: the signature against the
administrator keys valid now, and the row's place in the site snapshot. The
kiosk holds no signing key, so editing the database file (enabled, validity,
name, embeddings, revision) cannot admit anyone: the edited row no longer
verifies, is quarantined (an event, a count, ``store_health()``) and is never
used, and the kiosk still starts. The clear columns are for listing only.

Every change is one transaction, so a power cut leaves the old or the new
state. Revisions only grow. Deleting a person overwrites its ciphertext
(``secure_delete``) and checkpoints the WAL; the erasure is reported only
once the checkpoint succeeded, and one a reader blocked stays on a list in
the database and is retried until it does (``erasure``). The gallery is
updated one person at a time (``kiosk.gallery``), and changes made by
another process (a local ``kiosk enroll``) are picked up through SQLite's
``data_version``.

A file SQLite cannot read (damaged, or not a database), or a database that
is not a kiosk store, is refused when it is opened or first read with a
``StoreError`` (exit code 13) that names it and says what to do; its schema
is read before anything is written, and the kiosk never deletes or rewrites
it.

``keys``: the store key file; ``connection``: the file opened, read before
anything is written, and SQLite's errors as a ``StoreError``; ``schema``: the
tables and the migration of an older database; ``writes``: a row written, one
transaction each (a deletion with its pending erasure); ``erasure``: the
erasures still pending and their retries; ``trust``: what the store asks of
the site's trust, and the policy that sets a verified row aside; ``sealed``:
a row's signed payload, encrypted at rest and verified when read;
``standing``: what a stored row is worth once verified, and whether a change
of trust brings it back; ``admitted``: the people admitted now (gallery,
validity windows, second factors); ``report``: ``kiosk doctor``'s health and
the people listing; ``store``: the ``Store`` itself.
"""

from kiosk.records import EMBEDDING_SIZE, MAX_EMBEDDINGS, Enrollment, Tombstone
from kiosk.store.erasure import ERASURE_RETRY_S
from kiosk.store.keys import generate_key, load_key
from kiosk.store.sealed import StoreError
from kiosk.store.store import ApplyResult, Store
from kiosk.store.trust import Verifier

__all__ = ["EMBEDDING_SIZE", "ERASURE_RETRY_S", "MAX_EMBEDDINGS", "ApplyResult", "Enrollment", "Store", "StoreError",
           "Tombstone", "Verifier", "generate_key", "load_key"]
