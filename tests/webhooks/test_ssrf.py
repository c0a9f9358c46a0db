"""URL checks against server-side request forgery: after DNS resolution, no loopback, private,
link-local or metadata address unless allowlisted; https in production unless allowlisted."""

from __future__ import annotations

import asyncio

import pytest

from app.webhooks.ssrf import Allowlist, UrlRefused, check_url, parse_entry, resolve_host
from tests.webhooks.conftest import FakeDNS


def check(url: str, *entries: str, https: bool = False, dns: FakeDNS | None = None):
    allowlist = Allowlist.of(parse_entry(e) for e in entries)
    return asyncio.run(check_url(url, allowlist, require_https=https, resolver=dns or FakeDNS()))


INTERNAL = [
    "http://127.0.0.1/hook",
    "http://127.8.9.10:8080/hook",
    "http://localhost/hook",
    "http://10.0.0.5/hook",
    "http://10.255.1.1/hook",
    "http://172.16.3.4/hook",
    "http://192.168.1.10/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.100.100.200/",  # a cloud metadata address in the shared range
    "http://0.0.0.0/",
    "http://[::1]/hook",
    "http://[fe80::1]/hook",
    "http://[fd00:ec2::254]/",
    "http://[::ffff:127.0.0.1]/hook",  # IPv4 wrapped in IPv6
    "http://[::ffff:10.0.0.1]/hook",
    "http://[2002:a00:1::]/hook",  # 6to4 of 10.0.0.1
    "http://224.0.0.1/",
]


@pytest.mark.parametrize("url", INTERNAL)
def test_internal_addresses_are_refused(url):
    with pytest.raises(UrlRefused, match="internal address"):
        check(url)


def test_a_name_resolving_to_a_private_address_is_refused():
    dns = FakeDNS()
    dns.names["intranet.example.org"] = ["10.20.30.40"]
    with pytest.raises(UrlRefused, match=r"intranet\.example\.org resolves to 10\.20\.30\.40"):
        check("https://intranet.example.org/hook", dns=dns)


def test_one_internal_address_among_public_ones_is_enough_to_refuse():
    dns = FakeDNS()
    dns.names["mixed.example.org"] = ["93.184.216.34", "192.168.0.1"]
    with pytest.raises(UrlRefused):
        check("https://mixed.example.org/hook", dns=dns)


def test_public_address_is_allowed_and_pinned():
    target = check("https://hooks.example.org/in?x=1")
    assert target.address == "93.184.216.34"
    assert target.connect_url == "https://93.184.216.34:443/in?x=1"
    assert target.host_header == "hooks.example.org"


def test_ipv6_target_and_explicit_port():
    dns = FakeDNS()
    dns.names["v6.example.org"] = ["2606:2800:220:1:248:1893:25c8:1946"]
    target = check("https://v6.example.org:8443/", dns=dns)
    assert target.connect_url == "https://[2606:2800:220:1:248:1893:25c8:1946]:8443/"
    assert target.host_header == "v6.example.org:8443"


def test_unresolvable_host_is_refused():
    with pytest.raises(UrlRefused, match="does not resolve"):
        check("https://nowhere.invalid/hook")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://hooks.example.org/", "http or https"),
        ("https://user:pw@hooks.example.org/", "credentials"),
        ("http:///nohost", "no host"),
        ("https://hooks.example.org:99999/", "not a valid URL"),
    ],
)
def test_malformed_urls_are_refused(url, message):
    with pytest.raises(UrlRefused, match=message):
        check(url)


def test_allowlisted_network_admits_its_addresses_only():
    assert check("http://10.1.2.3/hook", "10.0.0.0/8").address == "10.1.2.3"
    assert check("http://127.0.0.1:9000/hook", "127.0.0.1").address == "127.0.0.1"
    with pytest.raises(UrlRefused):
        check("http://192.168.1.1/hook", "10.0.0.0/8")
    with pytest.raises(UrlRefused):
        check("http://169.254.169.254/", "10.0.0.0/8")


def test_allowlisted_host_name_and_wildcard():
    dns = FakeDNS()
    dns.names["mintrans.krasnodar.local"] = ["10.50.0.7"]
    dns.names["edo.corp.krasnodar.ru"] = ["172.20.1.1"]
    dns.names["corp.krasnodar.ru"] = ["172.20.1.2"]
    target = check("http://mintrans.krasnodar.local/hook", "mintrans.krasnodar.local", dns=dns)
    assert target.address == "10.50.0.7"
    assert check("http://edo.corp.krasnodar.ru/", "*.corp.krasnodar.ru", dns=dns)
    with pytest.raises(UrlRefused):  # *.domain covers names under it, not the domain itself
        check("http://corp.krasnodar.ru/", "*.corp.krasnodar.ru", dns=dns)


def test_https_is_required_in_production_unless_allowlisted():
    with pytest.raises(UrlRefused, match="https"):
        check("http://hooks.example.org/hook", https=True)
    assert check("https://hooks.example.org/hook", https=True)
    assert check("http://10.1.2.3/hook", "10.0.0.0/8", https=True)


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("10.1.2.3", "10.1.2.3/32"),
        ("10.1.2.3/8", "10.0.0.0/8"),
        ("::1", "::1/128"),
        ("MinTrans.Krasnodar.LOCAL.", "mintrans.krasnodar.local"),
        ("*.Corp.Krasnodar.ru", "*.corp.krasnodar.ru"),
    ],
)
def test_allowlist_entries_are_canonical(raw, canonical):
    assert parse_entry(raw) == canonical


@pytest.mark.parametrize("raw", ["", "http://x.org/", "a b", "-bad-.org", "x" * 64 + ".org"])
def test_bad_allowlist_entries(raw):
    with pytest.raises(ValueError):
        parse_entry(raw)


def test_the_system_resolver_answers_for_literals_and_localhost():
    assert asyncio.run(resolve_host("127.0.0.1", 80)) == ["127.0.0.1"]
    assert "127.0.0.1" in asyncio.run(resolve_host("localhost", 80)) or "::1" in asyncio.run(
        resolve_host("localhost", 80)
    )
