"""One person's change: signed at a fresh revision, published with a re-signed snapshot, the kiosks awaited.

``kiosk admin enroll`` and ``delete`` read the site first (so two
administrators never reuse a revision, and nothing is signed over a site
rolled back), publish the record retained, then the snapshot, and wait for
every known kiosk's ack, naming the silent ones and those that refused.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from kiosk.admin import site
from kiosk.admin.factor import factor_fields, taken_codes
from kiosk.admin.keys import load_signer
from kiosk.admin.rollback import check_not_rolled_back
from kiosk.admin.site import AckReport, SiteView, collect_acks, next_revision, publish_snapshot, read_site
from kiosk.admin.state import AdminState
from kiosk.errors import ConfigError, KioskError
from kiosk.mqtt.protocol import MAX_AHEAD_MS, Signer
from kiosk.records import Enrollment, Tombstone

__all__ = ["SyncIncompleteError", "cmd_delete", "cmd_enroll", "print_report", "publish_change", "sign_enrollment"]


class SyncIncompleteError(KioskError, TimeoutError):
    """Published, but not every known kiosk acknowledged it in time."""

    exit_code = 17


def publish_change(args: argparse.Namespace, signer: Signer, state: AdminState, person: str,
                   make: Callable[[int], tuple[bytes, str | None]], now: Callable[[], float] = time.time) -> tuple[
                       int, AckReport, SiteView]:
    """Read the site, sign at a fresh revision, publish the record then the snapshot, wait for the kiosks."""
    broker = site.Broker(args)  # looked up at call time: the seam tests replace
    try:
        now_ms = int(now() * 1000)
        view = read_site(broker, args, signer, state, person, now_ms)
        check_not_rolled_back(broker, view, state, args, exclude={person})
        revision = next_revision(now_ms, view.enrollments.get(person), view.people.get(person, (None, False))[0],
                                 state.revision(person))
        if revision > now_ms + MAX_AHEAD_MS:
            raise ConfigError(f"{person} already has revision {revision - 1}, more than a day ahead of this clock: "
                              "check the clocks of the administrators' machines")
        payload, name = make(revision)
        broker.subscribe(view.topic(f"+/acks/{person}"))
        broker.publish(view.topic(f"enrollments/{person}"), payload)
        state.record(person, revision, name, name is None, payload, now())
        publish_snapshot(broker, args, signer, state, view, now_ms)
        known = set(view.kiosks)
        broker.wait_for(lambda m: known <= set(_answered(m, args, person, revision)), args.wait)
        report = collect_acks(broker.messages, args.prefix, args.site, person, revision)
        report.silent = sorted(known - set(report.acked) - set(report.refused))
    finally:
        broker.close()
    return revision, report, view


def _answered(messages: list[tuple[str, bytes]], args: argparse.Namespace, person: str, revision: int) -> list[str]:
    r = collect_acks(messages, args.prefix, args.site, person, revision)
    return [*r.acked, *r.refused]


def print_report(what: str, revision: int, report: AckReport, view: SiteView) -> int:
    for w in [*view.warnings, *report.unreadable]:
        print(f"warning: {w}")
    print(f"published {what}, revision {revision}; snapshot re-signed")
    for device, status in sorted(report.acked.items()):
        note = " (kept; admitted once the kiosk holds a current snapshot, as the one just signed)" \
            if status == "held" else ""
        print(f"  {device:<20} {status}{note}")
    for device, reason in sorted(report.refused.items()):
        print(f"  {device:<20} REFUSED: {reason}")
    for device in report.silent:
        print(f"  {device:<20} no answer ({view.kiosks.get(device, '?')})")
    if not view.kiosks:
        print("  no kiosk of this site has announced itself on the broker yet")
    if report.silent or report.refused:
        raise SyncIncompleteError(f"{len(report.silent)} kiosk(s) silent ({', '.join(report.silent) or '-'}), "
                             f"{len(report.refused)} refused; the record stays retained: they apply it when they "
                             "reconnect (`kiosk admin status` shows who is behind)")
    return 0


def sign_enrollment(signer: Signer, site: str, person_id: str, name: str, fingerprint: str, embeddings: Any, *,
                    held_revision: int | None = None, valid_from: float | None = None,
                    valid_until: float | None = None, now: float | None = None) -> bytes:
    """A signed enrollment at a fresh revision (for a local ``kiosk enroll`` with an administrator key)."""
    revision = next_revision(int((time.time() if now is None else now) * 1000), held_revision)
    return signer.enrollment(site, Enrollment(person_id, name, revision, fingerprint, embeddings,
                                              valid_from=valid_from, valid_until=valid_until))


def cmd_enroll(args: argparse.Namespace) -> int:
    import numpy as np

    from kiosk.enrollment import TEMPLATE_KIND, duplicate_people, embed_photos, template_from_embeddings
    from kiosk.match import Gallery
    from kiosk.vision.pipeline import build_pipeline

    signer = load_signer(args.signing_key)
    state = AdminState(args.state)
    factor = factor_fields(args, taken=taken_codes(state.rows()))  # before the photos: a bad PIN fails fast
    pipeline, card = build_pipeline(args.model)
    photo_rows, checks = embed_photos(pipeline, args.photos)
    for c in checks:
        print(f"  {'ok ' if c.reason is None else 'REJECTED'} {c.path}" + (f": {c.reason}" if c.reason else ""))
    if len(photo_rows) < 3:
        print(f"warning: only {len(photo_rows)} usable photos; 3-10 are recommended")
    # one template per person; refused when the photos disagree (likely two different people)
    template = template_from_embeddings(photo_rows, checks=checks)
    embeddings = template.row()
    labels, rows = state.embeddings()
    if rows:
        for other, score in duplicate_people(Gallery(np.concatenate([np.atleast_2d(r) for r in rows]), labels),
                                             template.template, exclude=args.id):
            print(f"warning: {args.id} would be taken for enrolled person {other} (similarity {score:.3f})")

    def make(revision: int) -> tuple[bytes, str | None]:
        record = Enrollment(args.id, args.name, revision, card.fingerprint, embeddings,
                            valid_from=args.valid_from.timestamp() if args.valid_from else None,
                            valid_until=args.valid_until.timestamp() if args.valid_until else None,
                            template=TEMPLATE_KIND, **factor)
        return signer.enrollment(args.site, record), args.name

    revision, report, view = publish_change(args, signer, state, args.id, make)
    extras = "".join(f", {label}" for key, label in (("pin_verifier", "PIN"), ("user_code", "user code"),
                                                     ("cards", "cards")) if key in factor)
    return print_report(f"{args.id} ({args.name}, one template from {template.photos} photos{extras})", revision,
                        report, view)


def cmd_delete(args: argparse.Namespace) -> int:
    signer = load_signer(args.signing_key)
    state = AdminState(args.state)
    revision, report, view = publish_change(
        args, signer, state, args.id, lambda rev: (signer.tombstone(args.site, Tombstone(args.id, rev)), None))
    return print_report(f"the deletion of {args.id}", revision, report, view)
