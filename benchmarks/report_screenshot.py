"""Render the demo report in headless Chromium: a full-page PNG, and whether anything overflows its column.

    python benchmarks/report_screenshot.py [demo_out/report.html] [--png demo_out/report.png] [--width 1280]

Prints one JSON line: the page (``document.documentElement.scrollWidth``) and viewport widths, the body
column's width, the elements whose right edge passes the column (``overflowing``: tag.class and px;
wide tables scroll inside their ``.table-scroll`` box and do not count), how many table boxes scroll,
and the PNG's path. Exit 0 when nothing overflows, 1 when something does, 2 without Chromium.

How: a copy of the page gets a script that measures the layout and writes the result into the DOM;
``chromium --headless --dump-dom`` returns it; a second run takes the screenshot at the page's height.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

MEASURE = """<script>
window.addEventListener('load', () => {
  const body = document.body.getBoundingClientRect();
  const style = getComputedStyle(document.body);
  const right = body.right - parseFloat(style.paddingRight) + 1;
  const over = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('.table-scroll') && !el.classList.contains('table-scroll')) continue;
    if (el.tagName === 'SCRIPT' || el.id === 'midm-measure') continue;
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > right) over.push(el.tagName.toLowerCase() + (el.className ? '.' + el.className : '')
                                                  + ' ' + Math.round(r.right - right) + 'px');
  }
  const boxes = [...document.querySelectorAll('.table-scroll')];
  const out = {page_width: document.documentElement.scrollWidth, viewport_width: window.innerWidth,
               column_width: Math.round(body.width), page_height: document.documentElement.scrollHeight,
               overflowing: over.slice(0, 20), tables: document.querySelectorAll('table').length,
               tables_in_scroll_box: boxes.length,
               scrolling_tables: boxes.filter(b => b.scrollWidth > b.clientWidth).length};
  const pre = document.createElement('pre'); pre.id = 'midm-measure'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def chromium() -> str | None:
    return next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)


def _run(browser: str, *args: str) -> str:
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=3000",
           *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=True).stdout


def measure(html: Path, png: Path, width: int = 1280) -> dict:
    browser = chromium()
    if browser is None:
        raise FileNotFoundError("headless Chromium not found (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory(dir=html.parent, prefix=".screenshot-") as tmp:
        probe = Path(tmp) / html.name
        # the copy sits one folder down: point relative links (the plots) back up
        page = re.sub(r'src="(?!/|https?:)', 'src="../', html.read_text(encoding="utf-8"))
        probe.write_text(page.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
        dom = _run(browser, f"--window-size={width},900", "--dump-dom", probe.as_uri())
        found = re.search(r'<pre id="midm-measure">(.*?)</pre>', dom, re.S)
        if found is None:
            raise RuntimeError("the measuring script did not run (no #midm-measure in the dumped DOM)")
        result = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
                            .replace("&gt;", ">"))
        height = min(int(result["page_height"]) + 20, 30_000)
        png.parent.mkdir(parents=True, exist_ok=True)
        _run(browser, f"--window-size={width},{height}", f"--screenshot={png}", html.resolve().as_uri())
    return {"html": str(html), "png": str(png), **result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("html", nargs="?", default="demo_out/report.html")
    parser.add_argument("--png", default=None, help="screenshot path (default: report.png next to the page)")
    parser.add_argument("--width", type=int, default=1280, help="browser window width in px")
    args = parser.parse_args(argv)
    html = Path(args.html).resolve()
    if not html.is_file():
        print(f"report_screenshot: {html} not found; run `make demo` (or `midm demo --stages report`) first",
              file=sys.stderr)
        return 2
    try:
        result = measure(html, Path(args.png or html.with_name("report.png")), args.width)
    except FileNotFoundError as err:
        print(f"report_screenshot: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result, ensure_ascii=False))
    return 1 if result["overflowing"] or result["page_width"] > result["viewport_width"] else 0


if __name__ == "__main__":
    sys.exit(main())
