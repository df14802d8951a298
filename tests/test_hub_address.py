"""The hub admin token goes only over https to an allowed 10KC host (loopback only for the sandbox)."""

from __future__ import annotations

import pytest

from blocks import TenKCHub
from tasks.hub import HubAddressRefused

REFUSED = [
    ("http://acme.10kc.com/hub/main", None, "https"),
    ("https://acme.10kc.com.evil.example/hub/main", None, "not an allowed hub host"),
    ("https://10kc.com@evil.example/hub/main", None, "credentials in the URL are not allowed"),
    ("https://evil.example/hub/main", None, "not an allowed hub host"),
    ("https://acme.10kc.com/hub/main", "http://evil.example:8080", "https"),
    ("https://acme.10kc.com/hub/main", "https://evil.example", "not an allowed hub host"),
]


@pytest.mark.parametrize(("hub_url", "override", "problem"), REFUSED)
def test_the_token_is_not_sent_to_a_host_that_is_not_allowed(hub_url, override, problem):
    block = TenKCHub(api_token="hub-test", base_url_override=override)
    with pytest.raises(HubAddressRefused) as caught:
        block.get_client(hub_url)
    message = str(caught.value)
    assert problem in message and "\n" not in message and "hub-test" not in message


def test_loopback_is_refused_as_a_hub_url_and_nothing_reaches_it(hub):
    block = TenKCHub(api_token="hub-test")
    for url in (f"{hub.url}/hub/main", f"https://localhost:{hub.url.rsplit(':', 1)[1]}/hub/main"):
        with pytest.raises(HubAddressRefused, match="must use https|not an allowed hub host"):
            block.get_client(url).list_segments()
    assert hub.received == []


def test_the_sandbox_override_on_loopback_and_allowed_https_hosts_are_used(hub):
    sandbox = TenKCHub(api_token="hub-test", base_url_override=hub.url)
    assert sandbox.get_client("https://acme.10kc.com/hub/main").list_segments() == []
    assert len(hub.received) == 1 and hub.received[0].bearer == "hub-test"

    real = TenKCHub(api_token="t")
    assert real.api_base("https://acme.10kc.com/hub/main") == "https://acme.10kc.com/hub/main/api/admin/v1"
    own = TenKCHub(api_token="t", allowed_hosts=["hub.example.org", "*.hubs.example.org"])
    assert own.api_base("https://a.hubs.example.org/x").startswith("https://a.hubs.example.org/")
    with pytest.raises(HubAddressRefused):
        own.api_base("https://acme.10kc.com/hub/main")
