"""Open a page in headless Chromium: did every image decode, what did the console say; screenshots.

    python tests/browser.py models/RUN/report/report.html
    python tests/browser.py models/RUN/report/report.html --screenshots models/RUN/report/screenshots

Drives Debian's `chromium` (`make setup-browser`) through the DevTools protocol over a pipe
(--remote-debugging-pipe: NUL-terminated JSON on file descriptors 3 and 4), so it needs nothing but
the standard library. Networking, sync, updates and the sandbox are off; the profile is a temporary
folder. Exits 1 when an image did not decode or the console shows an error, 2 on bad input.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from competition import startup

startup.begin()  # before TensorFlow loads: Keras' backend, its start-up lines quieted

from common.errors import ProjectError, add_debug_flag, exit_status

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-pipe"]
WIDTH = 1280  # CSS pixels of the window, and of the screenshots
TILE = 4000  # screenshot height: a long page comes out as several PNGs
# Puts two pipe ends on the descriptors Chromium reads (3) and writes (4), then becomes Chromium.
# (A shell cannot: dash refuses descriptors above 9. preexec_fn is unsafe beside TensorFlow's threads.)
TRAMPOLINE = """import fcntl, os, sys
read, write = (fcntl.fcntl(int(fd), fcntl.F_DUPFD_CLOEXEC, 10) for fd in sys.argv[1:3])
os.dup2(read, 3)
os.dup2(write, 4)
os.execv(sys.argv[3], sys.argv[3:])"""
# Every <img> of the page, once each has decoded (or failed to).
IMAGES_JS = """Promise.all([...document.images].map(img => img.decode().then(() => "", e => String(e))))
  .then(errors => [...document.images].map((img, k) => ({alt: img.alt, naturalWidth: img.naturalWidth,
      naturalHeight: img.naturalHeight, complete: img.complete, error: errors[k]})))"""


class BrowserError(ProjectError):
    """Chromium is missing, did not start, or did not answer."""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


class Chromium:
    """One headless Chromium and one page in it, driven over the DevTools pipe."""

    def __init__(self, timeout: float = 60.0):
        executable = find_chromium()
        if executable is None:
            raise BrowserError("no chromium on PATH: run `make setup-browser` (Debian: apt-get install chromium)")
        self.timeout = timeout
        self.profile = tempfile.TemporaryDirectory(prefix="report-chromium-")
        to_child, self._write = os.pipe()
        self._read, from_child = os.pipe()
        command = [sys.executable, "-c", TRAMPOLINE, str(to_child), str(from_child), executable, *FLAGS,
                   f"--user-data-dir={self.profile.name}", f"--window-size={WIDTH},{TILE}", "about:blank"]
        self.log = open(Path(self.profile.name) / "chromium.log", "w+")
        self.process = subprocess.Popen(command, pass_fds=(to_child, from_child), stdin=subprocess.DEVNULL,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        os.close(to_child)
        os.close(from_child)
        self._buffer, self._next_id, self.events = b"", 0, []
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=True)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": WIDTH, "height": TILE, "deviceScaleFactor": 1, "mobile": False}, session=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (BrowserError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._read, self._write):
            try:
                os.close(fd)
            except OSError:
                pass
        self.log.close()
        self.profile.cleanup()

    def _message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._read], [], [], left)[0]:
                raise BrowserError(f"chromium did not answer within {self.timeout:.0f}s{self._log_tail()}")
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise BrowserError(f"chromium closed the pipe (exit {self.process.poll()}){self._log_tail()}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def _log_tail(self) -> str:
        self.log.flush()
        self.log.seek(0)
        lines = self.log.read().strip().splitlines()[-5:]
        return (": " + " | ".join(lines)) if lines else ""

    def send(self, method: str, params: dict | None = None, session: bool = False,
             timeout: float | None = None) -> dict:
        """Call a DevTools method and return its result; events that arrive meanwhile are kept."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, event: str) -> dict:
        deadline = time.monotonic() + self.timeout
        while True:
            for i, message in enumerate(self.events):
                if message.get("method") == event:
                    return self.events.pop(i)
            self.events.append(self._message(deadline))

    def open(self, page: Path) -> None:
        """Load a file and wait for its load event."""
        self.send("Page.navigate", {"url": Path(page).resolve().as_uri()}, session=True)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, session=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"script failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def console_errors(self) -> list[str]:
        """Errors the console shows: console.error calls, uncaught exceptions, browser errors (failed loads)."""
        errors = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append("console." + params["type"] + ": " + " ".join(
                    str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                errors.append("exception: " + details.get("exception", {}).get("description", details.get("text", "")))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip())
        return errors

    def screenshots(self, out: Path, stem: str = "page") -> list[Path]:
        """The whole page as PNGs of WIDTH x up to TILE CSS pixels, top to bottom."""
        height = int(self.send("Page.getLayoutMetrics", session=True)["cssContentSize"]["height"])
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for k, top in enumerate(range(0, height, TILE), start=1):
            clip = {"x": 0, "y": top, "width": WIDTH, "height": min(TILE, height - top), "scale": 1}
            shot = self.send("Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport": True},
                             session=True)
            paths.append(out / f"{stem}-{k}.png")
            paths[-1].write_bytes(base64.b64decode(shot["data"]))
        return paths


def check_page(page: Path, screenshots: Path | None = None) -> dict:
    """Load `page`; report its images (naturalWidth, decode error) and console errors; take screenshots."""
    with Chromium() as browser:
        browser.open(page)
        images = browser.evaluate(IMAGES_JS)
        shots = browser.screenshots(screenshots, Path(page).stem) if screenshots else []
        time.sleep(0.2)  # let late console messages arrive
        browser.send("Runtime.evaluate", {"expression": "0"}, session=True)
        return {"images": images, "console_errors": browser.console_errors(), "screenshots": shots}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("page", help="an HTML file, e.g. models/RUN/report/report.html")
    parser.add_argument("--screenshots", default=None, help="folder for full-page screenshots (default: none)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    return exit_status(lambda: check(Path(args.page), Path(args.screenshots) if args.screenshots else None), args.debug)


def check(page: Path, screenshots: Path | None) -> int:
    """The page's check, printed; 1 when an image did not decode or the console shows an error."""
    if not page.is_file():
        raise FileNotFoundError(2, "no such file", str(page))
    result = check_page(page, screenshots)
    broken = [img for img in result["images"] if not img["naturalWidth"] or img["error"]]
    print(f"images: {len(result['images']) - len(broken)} of {len(result['images'])} decoded")
    for img in broken:
        print(f"  not decoded: {img['alt']} {img['error']}")
    print(f"console errors: {len(result['console_errors'])}")
    for error in result["console_errors"]:
        print(f"  {error}")
    for path in result["screenshots"]:
        print(f"screenshot: {path}")
    return 1 if broken or result["console_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
