"""Pictures of each view for the documentation: ``python -m cnnzoo.app.screenshots OUT_DIR``.

Starts the app on a free loopback port, opens each view in headless Chromium
(Debian's, through Playwright, which the ``dev`` extra installs) and saves
``zoo.png``, ``inspect.png``, ``runs.png``, ``compare.png`` and
``experiments.png``. Inspect looks at the first run under ``--runs`` with one
of its test images, and clicks a unit of its second layer so the receptive
field is drawn; Runs opens that run and compares it with the next.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

from cnnzoo.errors import CnnzooError

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1360, "height": 900}
TIMEOUT_MS = 180_000


def _serve(runs: Path):
    import uvicorn

    from cnnzoo.app.server import address, bind, create_app

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(runs), log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, address(sock)


def _zoo(page, url: str, out: Path) -> None:
    page.goto(f"{url}/#network=resnet18")
    page.wait_for_selector("#diagram .stage")
    page.screenshot(path=out / "zoo.png")


def _inspect(page, url: str, out: Path, source: str) -> None:
    page.goto(f"{url}/#inspect")
    page.wait_for_selector(f"#source option[value='{source}']", state="attached")
    page.select_option("#source", source)
    page.wait_for_selector("#sample option:nth-child(2)", state="attached")
    page.select_option("#sample", index=1)
    page.wait_for_selector("#feature-maps img")
    layers = page.locator("#feature-layer option").evaluate_all("o => o.map(x => x.value)")
    top_level = [name for name in layers if "." not in name] or layers
    layer = top_level[min(2, len(top_level) - 1)]  # a third stage: a field of some size
    page.select_option("#feature-layer", layer)
    title = "document.querySelector('#feature-title').textContent"
    page.wait_for_function(f"{title}.startsWith('{layer}:')")
    picture = page.locator("#feature-maps img").first
    box = picture.bounding_box()
    picture.click(position={"x": box["width"] * 0.3, "y": box["height"] * 0.4})
    page.wait_for_selector("#rf-box")
    page.screenshot(path=out / "inspect.png", full_page=True)


def _runs(page, url: str, out: Path, runs: list[str]) -> None:
    page.goto(f"{url}/#run={runs[0]}")
    page.wait_for_selector("#loss-chart path.series")
    page.screenshot(path=out / "runs.png", full_page=True)
    if len(runs) > 1:
        for name in runs[:2]:
            page.check(f".run-select[value='{name}']")
        page.click("#compare-runs")
        page.wait_for_selector("#comparison-chart circle.point")
        page.screenshot(path=out / "compare.png")


def _experiments(page, url: str, out: Path) -> None:
    page.goto(f"{url}/#experiment=degradation")
    page.wait_for_selector("#experiment-title")
    page.wait_for_timeout(500)  # the report's figures
    page.screenshot(path=out / "experiments.png")


def take(out: Path, runs: Path) -> list[Path]:
    """Save a picture of each view into ``out`` and return their paths."""
    from cnnzoo.app.runs import list_runs

    try:
        from playwright.sync_api import sync_playwright
    except ModuleNotFoundError:
        raise CnnzooError("screenshots need playwright: pip install 'cnnzoo[dev]'") from None
    trained = [r for r in list_runs(runs) if (runs / r / "best.pt").is_file()]
    if not trained:
        raise CnnzooError(f"{runs} holds no trained run; `make demo` trains one")
    out.mkdir(parents=True, exist_ok=True)
    server, url = _serve(runs)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(TIMEOUT_MS)
            _zoo(page, url, out)
            _inspect(page, url, out, f"run:{trained[0]}")
            _runs(page, url, out, trained)
            _experiments(page, url, out)
            browser.close()
    finally:
        server.should_exit = True
    return sorted(out.glob("*.png"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnnzoo.app.screenshots", description=__doc__)
    parser.add_argument("out", type=Path, help="folder for the pictures")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="folder of runs to show")
    args = parser.parse_args(argv)
    try:
        written = take(args.out, args.runs)
    except CnnzooError as error:
        parser.error(str(error))  # one line and exit status 2, as the command line answers
    print("\n".join(f"wrote {path}" for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
