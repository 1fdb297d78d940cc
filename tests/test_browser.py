"""Saved views open in a real browser: headless Chromium renders them offline, without errors.

The test drives Chromium through chromedriver's W3C WebDriver HTTP interface (standard
library only). It is skipped, with the reason, only when no Chromium or chromedriver is
installed (``apt-get install chromium chromium-driver`` provides both; CI installs them).
"""

from __future__ import annotations

import base64
import io
import ipaddress
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image, ImageChops
from shapely.geometry import box

import sentinel_cube as sc
from sentinel_cube.catalog import LocalCatalog
from sentinel_cube.plot import (
    acquisitions_plot,
    correlation_plot,
    cube_view,
    footprints,
    landcover_plot,
    save,
)
from sentinel_cube.testing import BUDAPEST_TILES, default_specs, make_archive

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Chromium still starts a few services of its own (sign-in, updates, network time) that
#: reach for Google's servers. The resolver rule refuses every name but the loopback's
#: inside the browser, so they fail before any DNS query or connection, and no proxy
#: (the tests' environment has one) gets to resolve them instead.
CHROME_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-domain-reliability", "--no-pings",
    "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    "--window-size=1280,1024", "--hide-scrollbars",
]  # fmt: skip
PAGES = ("footprints", "acquisitions", "landcover", "correlation", "cube_rgb", "cube_bands")

#: Resolves once BokehJS has embedded the document and every view is rendered (idle).
WAIT_FOR_BOKEH = """
const done = arguments[arguments.length - 1];
const started = Date.now();
(function poll() {
  const docs = window.Bokeh ? Bokeh.documents : [];
  if (docs.length && docs.every((d) => d.is_idle)) { done(true); return; }
  if (Date.now() - started > 30000) { done(false); return; }
  setTimeout(poll, 50);
})();
"""
#: Bounding boxes of the visible canvases, searched through shadow roots (BokehJS 3).
CANVASES = """
const found = [];
(function walk(root) {
  for (const el of root.querySelectorAll("*")) {
    if (el.tagName === "CANVAS") {
      const r = el.getBoundingClientRect();
      if (r.width > 0 && r.height > 0) found.push([r.left, r.top, r.width, r.height]);
    }
    if (el.shadowRoot) walk(el.shadowRoot);
  }
})(document);
return found;
"""
RESOURCES = "return performance.getEntriesByType('resource').map((e) => e.name);"
VISIBLE_TITLE = """
const root = Bokeh.documents[0].roots()[0];
const shown = root.children.filter((c) => c.visible && c.title);
return shown.map((c) => c.title.text);
"""


def off_machine_traffic(net_log: Path) -> list[str]:
    """What Chromium's net log shows it sent beyond the loopback: DNS lookups, datagrams
    and TCP connections to other addresses. (A UDP ``connect`` without a datagram, which
    Chromium makes to learn whether IPv6 is routed, sends nothing and is not listed.)"""
    text = net_log.read_text().rstrip()
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # the browser was killed: the log stops in the events
        log = json.loads(text.rstrip(",") + "]}")
    events = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    sources = {v: k for k, v in log["constants"]["logSourceType"].items()}
    found = []
    for event in log["events"]:
        kind, source = events[event["type"]], sources[event["source"]["type"]]
        address = str((event.get("params") or {}).get("address", ""))
        host = address.rsplit(":", 1)[0].strip("[]")
        if kind.startswith(("DNS_TRANSACTION", "HOST_RESOLVER_DNS_TASK", "HOST_RESOLVER_SYSTEM")):
            found.append(kind)
        elif kind == "UDP_BYTES_SENT":
            found.append(f"{kind} on socket {event['source']['id']}")
        elif address and "UDP" not in source and not _loopback(host):
            found.append(f"{kind} {address}")
    return found


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _find_chromium() -> tuple[str, str]:
    browser = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip(
            "no Chromium and chromedriver on PATH (found browser: "
            f"{browser or 'none'}, driver: {driver or 'none'}); install them with "
            "'apt-get install chromium chromium-driver' (.ci/run does it)"
        )
    return browser, driver


class WebDriver:
    """The few W3C WebDriver commands the test needs, over plain HTTP."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.session = ""

    def call(self, method: str, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path, data=data, method=method,
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())["value"]

    def command(self, method: str, path: str, body: dict | None = None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def open(self, path: Path) -> None:
        self.command("POST", "/url", {"url": path.resolve().as_uri()})

    def run(self, script: str, asynchronous: bool = False):
        kind = "async" if asynchronous else "sync"
        return self.command("POST", f"/execute/{kind}", {"script": script, "args": []})

    def screenshot(self) -> Image.Image:
        png = base64.b64decode(self.command("GET", "/screenshot"))
        return Image.open(io.BytesIO(png)).convert("RGB")

    def severe_logs(self) -> list[str]:
        entries = self.command("POST", "/se/log", {"type": "browser"})
        return [e["message"] for e in entries if e["level"] == "SEVERE"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    binary, driver_path = _find_chromium()
    port = _free_port()
    process = subprocess.Popen(
        [driver_path, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    driver = WebDriver(port)
    profile = tmp_path_factory.mktemp("chromium-profile")
    net_log = profile / "net-log.json"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if driver.call("GET", "/status").get("ready"):
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"chromedriver ({driver_path}) did not start")
            time.sleep(0.1)
        args = [*CHROME_ARGS, f"--user-data-dir={profile}", f"--log-net-log={net_log}"]
        options = {"binary": binary, "args": args}
        capabilities = {
            "browserName": "chrome",
            "goog:chromeOptions": options,
            "goog:loggingPrefs": {"browser": "ALL"},
            "timeouts": {"script": 60000, "pageLoad": 60000},
        }
        created = driver.call("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})
        driver.session = created["sessionId"]
        yield driver
    finally:
        if driver.session:
            try:
                driver.command("DELETE", "")
            except (urllib.error.URLError, ConnectionError):
                pass
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    # every test of this module ran in this browser: what it sent went nowhere else
    stray = off_machine_traffic(net_log)
    assert not stray, f"Chromium's net log ({net_log}) shows traffic off this machine: " + (
        ", ".join(sorted(set(stray))[:10])
    )


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("browser")
    specs = default_specs(BUDAPEST_TILES, ("2023-06-01", "2023-06-06", "2023-07-06"),
                          partial=None, cloud_fractions=(0.5, 0.1, 0.0))  # fmt: skip
    make_archive(root / "archive", specs, scale=61, bands=["B02", "B03", "B04"])
    products = LocalCatalog(root / "archive", require_bands=None, cache_dir=root / ".c").search()
    aoi = box(19.70, 47.30, 19.95, 47.45)
    cube = sc.open_cube(products, bands=["B02", "B03", "B04"], resolution=610,
                        aoi=(19.0, 47.4, 19.3, 47.6))  # fmt: skip
    views = {
        "footprints": footprints(products, aoi),
        "acquisitions": acquisitions_plot(products, "W", by="platform"),
        "landcover": landcover_plot(products, "W"),
        "correlation": correlation_plot(products),
        "cube_rgb": cube_view(cube, ["B04", "B03", "B02"]),
        "cube_bands": cube_view(cube),
    }
    return {name: save(view, root / f"{name}.html") for name, view in views.items()}


@pytest.fixture(scope="module")
def blank(browser, tmp_path_factory) -> Image.Image:
    """A screenshot of an empty white page: what 'nothing rendered' looks like."""
    empty = tmp_path_factory.mktemp("blank") / "blank.html"
    empty.write_text("<!DOCTYPE html><html><body style='margin:0;background:#fff'></body></html>")
    browser.open(empty)
    return browser.screenshot()


def _open_and_wait(browser: WebDriver, page: Path) -> None:
    browser.command("POST", "/se/log", {"type": "browser"})  # drop earlier entries
    browser.open(page)
    assert browser.run(WAIT_FOR_BOKEH, asynchronous=True), f"{page.name}: BokehJS never idle"


def _changed_pixels(shot: Image.Image, reference: Image.Image, rect) -> tuple[int, int]:
    left, top, width, height = (int(round(v)) for v in rect)
    area = (left, top, left + width, top + height)
    difference = ImageChops.difference(shot.crop(area), reference.crop(area)).convert("L")
    changed = sum(difference.histogram()[17:])  # pixels differing by more than 16 levels
    return changed, width * height


@pytest.mark.parametrize("name", PAGES)
def test_saved_view_renders_offline_without_errors(browser, pages, blank, name):
    _open_and_wait(browser, pages[name])
    assert browser.severe_logs() == []  # no console error, no failed load
    fetched = browser.run(RESOURCES)
    assert [url for url in fetched if not url.startswith(("file:", "data:", "blob:"))] == []
    canvases = browser.run(CANVASES)
    assert canvases, f"{name}: no canvas on the page"
    shot = browser.screenshot()
    assert shot.size == blank.size
    biggest = max(canvases, key=lambda r: r[2] * r[3])
    changed, area = _changed_pixels(shot, blank, biggest)
    assert changed > 0.01 * area, f"{name}: the canvas is blank ({changed} of {area} px drawn)"
    colours = shot.getcolors(1 << 20)
    assert len(colours) > 50, f"{name}: only {len(colours)} colours on screen"


def test_cube_browser_slider_switches_frames(browser, pages):
    _open_and_wait(browser, pages["cube_rgb"])
    [title] = browser.run(VISIBLE_TITLE)
    assert title.startswith("2023-06-01 UTC · RGB B04/B03/B02")
    canvases = browser.run(CANVASES)
    before = browser.screenshot()
    browser.run("Bokeh.documents[0].get_model_by_name('frame-widget-0').value = 2;")
    assert browser.run(WAIT_FOR_BOKEH, asynchronous=True)
    titles = browser.run(VISIBLE_TITLE)
    assert len(titles) == 1 and titles[0].startswith("2023-07-06 UTC")
    deadline = time.monotonic() + 15
    while True:
        after = browser.screenshot()
        changed, area = _changed_pixels(after, before, max(canvases, key=lambda r: r[2] * r[3]))
        if changed > 0.05 * area or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert changed > 0.05 * area, "the frame did not change on screen"
    assert browser.severe_logs() == []


def test_net_log_check_sees_lookups_datagrams_and_connections(tmp_path):
    """The check above, on a log shaped like Chromium's: it must not pass a leak by."""
    types = ["TCP_CONNECT_ATTEMPT", "UDP_CONNECT", "UDP_BYTES_SENT", "HOST_RESOLVER_SYSTEM_TASK",
             "DNS_TRANSACTION_QUERY", "URL_REQUEST_START_JOB"]  # fmt: skip
    constants = {"logEventTypes": {t: i for i, t in enumerate(types)},
                 "logSourceType": {"SOCKET": 0, "UDP_SOCKET": 1, "URL_REQUEST": 2}}  # fmt: skip

    def event(kind, source, **params):
        return {"type": types.index(kind), "source": {"type": source, "id": 7}, "params": params}

    local = [
        event("TCP_CONNECT_ATTEMPT", 0, address="127.0.0.1:5555"),
        event("TCP_CONNECT_ATTEMPT", 0, address="[::1]:5555"),
        event("UDP_CONNECT", 1, address="[2001:4860:4860::8888]:443"),  # the IPv6 route probe
        event("URL_REQUEST_START_JOB", 2, url="file:///tmp/page.html"),
    ]
    stray = [
        event("TCP_CONNECT_ATTEMPT", 0, address="192.0.2.1:443"),
        event("TCP_CONNECT_ATTEMPT", 0, address="[2001:db8::1]:80"),
        event("UDP_BYTES_SENT", 1, byte_count=40),
        event("HOST_RESOLVER_SYSTEM_TASK", 2),
        event("DNS_TRANSACTION_QUERY", 2),
    ]
    log = tmp_path / "net-log.json"
    log.write_text(json.dumps({"constants": constants, "events": local}))
    assert off_machine_traffic(log) == []
    for one in stray:
        log.write_text(json.dumps({"constants": constants, "events": [*local, one]}))
        assert len(off_machine_traffic(log)) == 1, one
    # a log cut short (the browser killed) still reads, with a trailing comma as Chromium writes
    whole = json.dumps({"constants": constants, "events": [*local, stray[0]]})
    log.write_text(whole[: -len("]}")] + ",\n")
    assert off_machine_traffic(log) == ["TCP_CONNECT_ATTEMPT 192.0.2.1:443"]
