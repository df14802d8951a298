"""WorkOS API stand-in: organizations (list by domain, get, get by external id, create) with the
response shapes the SDK parses, Admin Portal links that expire after five minutes, errors by
status code and 429s with Retry-After."""

from __future__ import annotations

import itertools
import secrets
import time
from datetime import UTC, datetime

from sandbox.http import Request, Response, StandIn

PORTAL_LINK_SECONDS = 300


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _error(status: int, code: str, message: str) -> Response:
    return Response(status, {"code": code, "message": message})


class WorkOSStandIn(StandIn):
    name = "workos"

    def __init__(self, api_key: str = "sk_test_sandbox"):
        self.api_key = api_key
        self.organizations: dict[str, dict] = {}
        self.portal_links: dict[str, dict] = {}  # secret -> {organization, intent, issued}
        self._ids = itertools.count(1)
        super().__init__()

    def setup(self) -> None:
        self.route("GET", "/organizations", self._authed(self._list))
        self.route("POST", "/organizations", self._authed(self._create))
        self.route(
            "GET", r"/organizations/external_id/(?P<external_id>[^/]+)", self._authed(self._by_external_id)
        )
        self.route("GET", r"/organizations/(?P<id>org_\w+)", self._authed(self._get))
        self.route("POST", "/portal/generate_link", self._authed(self._generate_link))
        self.route("GET", "/portal/launch", self._launch)

    def _authed(self, handler):
        def wrapped(request: Request) -> Response:
            if request.bearer != self.api_key:
                return _error(401, "unauthorized", "Invalid API key")
            return handler(request)

        return wrapped

    def _list(self, request: Request) -> Response:
        wanted = {d for d in (request.params.get("domains") or "").split(",") if d}
        found = [
            org
            for org in self.organizations.values()
            if not wanted or wanted & {d["domain"] for d in org["domains"]}
        ]
        return Response(
            200, {"object": "list", "data": found, "list_metadata": {"before": None, "after": None}}
        )

    def _create(self, request: Request) -> Response:
        body = request.json or {}
        name = (body.get("name") or "").strip()
        if not name:
            return _error(422, "invalid_request_parameters", "name is required")
        external_id = body.get("external_id")
        if external_id and any(o["external_id"] == external_id for o in self.organizations.values()):
            return _error(409, "external_id_conflict", "An organization with this external_id already exists")
        domain_data = body.get("domain_data") or [
            {"domain": d, "state": "pending"} for d in body.get("domains", [])
        ]
        taken = {d["domain"] for o in self.organizations.values() for d in o["domains"]}
        clash = [d["domain"] for d in domain_data if d["domain"] in taken]
        if clash:
            return _error(
                409, "domain_already_in_use", f"Domain {clash[0]} is already in use by another organization"
            )
        org_id = f"org_{next(self._ids):026d}"
        stamp = _now()
        org = {
            "object": "organization",
            "id": org_id,
            "name": name,
            "domains": [
                {
                    "object": "organization_domain",
                    "id": f"org_domain_{next(self._ids):026d}",
                    "organization_id": org_id,
                    "domain": d["domain"],
                    "state": d.get("state", "pending"),
                    "verification_strategy": "manual",
                    "created_at": stamp,
                    "updated_at": stamp,
                }
                for d in domain_data
            ],
            "metadata": body.get("metadata") or {},
            "external_id": external_id,
            "allow_profiles_outside_organization": False,
            "created_at": stamp,
            "updated_at": stamp,
        }
        self.organizations[org_id] = org
        return Response(201, org)

    def _get(self, request: Request) -> Response:
        org = self.organizations.get(request.match["id"])
        return Response(200, org) if org else _error(404, "entity_not_found", "Organization not found")

    def _by_external_id(self, request: Request) -> Response:
        org = next(
            (o for o in self.organizations.values() if o["external_id"] == request.match["external_id"]), None
        )
        return Response(200, org) if org else _error(404, "entity_not_found", "Organization not found")

    def _generate_link(self, request: Request) -> Response:
        body = request.json or {}
        if body.get("organization") not in self.organizations:
            return _error(404, "entity_not_found", "Organization not found")
        if body.get("intent") not in ("sso", "dsync", "audit_logs", "log_streams", "domain_verification"):
            return _error(422, "invalid_intent", "intent is not valid")
        secret = secrets.token_urlsafe(16)
        self.portal_links[secret] = {
            "organization": body["organization"],
            "intent": body["intent"],
            "issued": time.time(),
        }
        return Response(200, {"link": f"{self.url}/portal/launch?secret={secret}"})

    def _launch(self, request: Request) -> Response:
        link = self.portal_links.get(request.params.get("secret", ""))
        if link is None:
            return Response(404, "<h1>Unknown link</h1>", content_type="text/html")
        if time.time() - link["issued"] > PORTAL_LINK_SECONDS:
            return Response(410, "<h1>This link has expired</h1>", content_type="text/html")
        org = self.organizations[link["organization"]]
        return Response(
            200, f"<h1>Admin Portal: {link['intent']} for {org['name']}</h1>", content_type="text/html"
        )
