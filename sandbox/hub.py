"""10KC hub admin API stand-in (docs/hub-api.md): segments with options, member export and the three
bulk uploads, per hub, with state; a bulk upload repeated with the same Idempotency-Key is answered
as the first time and not acted on again."""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from sandbox.http import Request, Response, StandIn

PREFIX = r"/(?P<hub>[^/]+)/api/admin/v1"
GRACE = "Deletion Grace Until"  # a deactivated member's last day before deletion (set by bulk-update)


@dataclass
class Hub:
    segments: list[dict] = field(default_factory=list)
    members: dict[str, dict] = field(default_factory=dict)  # lower email -> row
    uploads: list[tuple[str, bytes]] = field(default_factory=list)  # each upload acted on
    answered: dict[str, Response] = field(default_factory=dict)  # Idempotency-Key -> first answer


def hub_key(hub_url: str) -> str:
    parts = urlsplit(hub_url)
    return quote(parts.netloc + parts.path.rstrip("/"), safe="")


class HubStandIn(StandIn):
    name = "hub"

    def __init__(self, token: str = "hub-sandbox-token"):
        self.token = token
        self.hubs: dict[str, Hub] = {}
        self._ids = itertools.count(1)
        super().__init__()

    def hub(self, hub_url: str) -> Hub:
        return self.hubs.setdefault(hub_key(hub_url), Hub())

    def forget_idempotency_keys(self) -> None:
        """The real hub remembers an Idempotency-Key for 24 h: let that day pass."""
        with self.lock:
            for hub in self.hubs.values():
                hub.answered.clear()

    def setup(self) -> None:
        self.route("GET", PREFIX + "/segments", self._authed(self._list))
        self.route("POST", PREFIX + "/segments", self._authed(self._create))
        self.route("POST", PREFIX + r"/segments/(?P<id>[^/]+)/options", self._authed(self._add_options))
        self.route("GET", PREFIX + "/members/export", self._authed(self._export))
        for path, action in (
            ("/invites/bulk", "invite"),
            ("/members/bulk-update", "update"),
            ("/members/bulk-remove", "remove"),
        ):
            self.route("POST", PREFIX + path, self._authed(self._uploader(action)))

    def _authed(self, handler):
        def wrapped(request: Request) -> Response:
            if request.bearer != self.token:
                return Response(401, {"error": "unauthorized", "message": "bad or missing API token"})
            return handler(request, self.hubs.setdefault(request.match["hub"], Hub()))

        return wrapped

    def _list(self, request: Request, hub: Hub) -> Response:
        return Response(200, {"segments": hub.segments})

    def _create(self, request: Request, hub: Hub) -> Response:
        body = request.json or {}
        name, visibility = (body.get("name") or "").strip(), body.get("visibility")
        if not name or visibility not in ("public", "private"):
            return Response(
                400, {"error": "invalid", "message": "name and visibility (public/private) are required"}
            )
        if any(s["name"].casefold() == name.casefold() for s in hub.segments):
            return Response(409, {"error": "segment_exists", "message": f"a segment named {name} exists"})
        segment = {"id": f"seg_{next(self._ids)}", "name": name, "visibility": visibility, "options": []}
        hub.segments.append(segment)
        return Response(201, {"segment": segment})

    def _add_options(self, request: Request, hub: Hub) -> Response:
        segment = next((s for s in hub.segments if s["id"] == request.match["id"]), None)
        if segment is None:
            return Response(404, {"error": "not_found", "message": "no such segment"})
        have = {o.casefold() for o in segment["options"]}
        added = []
        for option in (request.json or {}).get("options", []):
            if option.strip() and option.casefold() not in have:
                segment["options"].append(option)
                have.add(option.casefold())
                added.append(option)
        return Response(200, {"segment": segment, "added": added})

    def _export(self, request: Request, hub: Hub) -> Response:
        names = [s["name"] for s in hub.segments]
        held = [GRACE] if any(member.get(GRACE) for member in hub.members.values()) else []
        columns = ["Email", "First Name", "Last Name", "Status", *names, *held]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for member in hub.members.values():
            writer.writerow([member.get(c, "") for c in columns])
        return Response(200, out.getvalue(), content_type="text/csv")

    def _uploader(self, action: str):
        def handle(request: Request, hub: Hub) -> Response:
            key = request.headers.get("idempotency-key")
            if key and key in hub.answered:  # a retry of an upload done before: answer, do not act
                return hub.answered[key]
            response = act(request, hub)
            if key and response.status < 500:
                hub.answered[key] = response
            return response

        def act(request: Request, hub: Hub) -> Response:
            rows = list(csv.DictReader(io.StringIO(request.body.decode("utf-8"))))
            hub.uploads.append((action, request.body))
            for row in rows:
                key = row["Email"].strip().lower()
                if action == "remove":
                    hub.members.pop(key, None)
                    continue
                status = row.get("Employee Status", "active")
                record = hub.members.setdefault(key, {})
                record.update({k: v for k, v in row.items() if k != "Employee Status"})
                record["Status"] = "deactivated" if status == "inactive" else "active"
            count_key = {"invite": "accepted", "update": "updated", "remove": "removed"}[action]
            return Response(200, {count_key: len(rows)})

        return handle
