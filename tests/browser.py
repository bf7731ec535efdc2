"""Headless Chromium for page tests: Debian's chromium driven by Playwright, with every request recorded."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Page, Route, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
NETWORK_SCHEMES = {"http", "https", "ws", "wss"}


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def is_outside(url: str) -> bool:
    """True for a network request to any host but this machine."""
    parts = urlsplit(url)
    return parts.scheme in NETWORK_SCHEMES and parts.hostname not in LOCAL_HOSTS


@dataclass
class BrowserPage:
    """A page on the live server; `outside_requests` lists every request it sent towards another host.

    Those are recorded and refused, so a page that needs the internet fails as it would offline. A load the page's
    own Content-Security-Policy blocks never reaches the network, so it is not a request here.
    """

    page: Page
    outside_requests: list[str] = field(default_factory=list)

    def handle(self, route: Route) -> None:
        if is_outside(route.request.url):
            self.outside_requests.append(route.request.url)
            route.abort()
        else:
            route.continue_()
