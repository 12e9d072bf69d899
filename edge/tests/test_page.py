"""The drawing page in headless Chromium: strokes drawn with synthetic mouse events are read aloud.

Drives Chromium with tests/browser.py (the DevTools protocol over a pipe, standard library only), a
test tool that the installed packages do not carry; skipped where there is no chromium (`make
setup-browser` installs it).
"""

import math
import sys
import threading
from pathlib import Path

import pytest
from conftest import model_path

from edge.pi import serve

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))  # the test tools' folder
browser = pytest.importorskip("browser", reason="tests/browser.py drives Chromium")
if browser.find_chromium() is None:
    pytest.skip("no chromium on PATH: `make setup-browser` installs it", allow_module_level=True)

# Strokes in the canvas's own pixels (600 x 240): a 1, a 0 and a 7, apart.
ONE = [(150, 50 + 7 * k) for k in range(21)]
ZERO = [(345 + 45 * math.sin(2 * math.pi * k / 40), 120 - 70 * math.cos(2 * math.pi * k / 40)) for k in range(41)]
SEVEN = [(440 + 4 * k, 60) for k in range(21)] + [(520 - 2.5 * k, 60 + 6.5 * k) for k in range(1, 21)]


@pytest.fixture(scope="module")
def page_url(fixtures):
    server = serve.make_server(str(model_path(fixtures, "int8")), port=0, threads=1, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def draw(chromium, strokes):
    """Each stroke as a press, moves with the left button held, and a release, in CSS pixels."""
    box = chromium.evaluate("(() => { const r = document.getElementById('pad').getBoundingClientRect();"
                            " return [r.left, r.top, r.width / 600, r.height / 240]; })()")
    for stroke in strokes:
        points = [(box[0] + x * box[2], box[1] + y * box[3]) for x, y in stroke]
        for kind, (x, y) in [("mousePressed", points[0])] + [("mouseMoved", p) for p in points[1:]] + [
                ("mouseReleased", points[-1])]:
            chromium.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left",
                                                       "buttons": 0 if kind == "mouseReleased" else 1,
                                                       "clickCount": 1}, session=True)


def reading_after(chromium, count):
    """The reading shown once the page has had `count` answers (it reads 0.3 s after the last stroke)."""
    return chromium.evaluate(f"""new Promise((resolve, reject) => {{
        const started = Date.now();
        (function poll() {{
          const shown = document.getElementById('reading');
          if (Number(shown.dataset.count) >= {count}) return resolve({{
              text: shown.textContent, status: document.getElementById('status').textContent,
              bars: [...document.querySelectorAll('#bars .digit')].map(d => d.querySelectorAll('.bar').length),
              top: [...document.querySelectorAll('#bars .bar.top span')].map(s => s.textContent).join('')}});
          if (Date.now() - started > 20000) return reject(new Error('no reading within 20 s'));
          setTimeout(poll, 50);
        }})();
      }})""")


def test_drawn_number_is_read_with_ten_bars_per_digit(page_url):
    with browser.Chromium() as chromium:
        chromium.send("Page.navigate", {"url": page_url}, session=True)
        chromium.wait_for("Page.loadEventFired")
        draw(chromium, [ONE])
        shown = reading_after(chromium, 1)
        assert shown["text"] == "1" and shown["bars"] == [10] and shown["top"] == "1", shown
        draw(chromium, [ZERO, SEVEN])
        shown = reading_after(chromium, 2)
        assert shown["text"] == "107" and shown["bars"] == [10, 10, 10] and shown["top"] == "107", shown
        chromium.evaluate("document.getElementById('clear').click()")
        assert chromium.evaluate("document.getElementById('reading').textContent") == ""
        assert chromium.console_errors() == []
