"""What an administrator published, and which kiosk acknowledged which revision: ``list`` and ``status``.

``kiosk admin list`` reads this administrator's state file; ``kiosk admin
status`` reads the kiosks' retained acks and says, per kiosk, who it is
current on, behind on, or refused.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from kiosk.admin import site
from kiosk.admin.state import AdminState

__all__ = ["cmd_list", "cmd_status", "status"]


def cmd_list(args: argparse.Namespace) -> int:
    rows = AdminState(args.state).rows()
    for r in rows:
        print(f"{r['person_id']:<20} {r['name'] or '':<24} rev {r['revision']:<14} {'deleted' if r['deleted'] else ''}")
    print(f"{sum(not r['deleted'] for r in rows)} people enrolled, {sum(r['deleted'] for r in rows)} deleted")
    return 0


def status(rows: list[dict[str, Any]], acks: list[tuple[str, bytes]]) -> dict[str, dict[str, Any]]:
    """Per kiosk: which people it acknowledged at the published revision, and which it is behind on."""
    published = {r["person_id"]: r["revision"] for r in rows}
    kiosks: dict[str, dict[str, Any]] = {}
    for parts, body in site.read_acks(acks):
        device, person = parts[-3], parts[-1]
        k = kiosks.setdefault(device, {"current": [], "behind": [], "refused": []})
        if body.get("status") == "refused":
            k["refused"].append({"person": person, "reason": body.get("reason")})
        elif body.get("revision") == published.get(person):
            k["current"].append(person)
        else:
            k["behind"].append({"person": person, "has": body.get("revision"), "published": published.get(person)})
    for k in kiosks.values():
        seen = set(k["current"]) | {b["person"] for b in k["behind"]} | {r["person"] for r in k["refused"]}
        k["behind"] += [{"person": p, "has": None, "published": rev} for p, rev in published.items() if p not in seen]
    return kiosks


def cmd_status(args: argparse.Namespace) -> int:
    rows = AdminState(args.state).rows()
    broker = site.Broker(args)  # looked up at call time: the seam tests replace
    try:
        acks = broker.retained(f"{args.prefix}/{args.site}/+/acks/+")
    finally:
        broker.close()
    report = status(rows, acks)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    if not report:
        print("no kiosk has acknowledged anything yet")
    for device, k in sorted(report.items()):
        flag = "up to date" if not k["behind"] and not k["refused"] else "BEHIND" if k["behind"] else "REFUSED some"
        print(f"{device:<20} {len(k['current'])} current, {len(k['behind'])} behind, {len(k['refused'])} refused: {flag}")
        for b in k["behind"]:
            print(f"    behind on {b['person']}: has {b['has']}, published {b['published']}")
        for r in k["refused"]:
            print(f"    refused {r['person']}: {r['reason']}")
    return 0
