"""The page in a real browser: Debian's headless Chromium driven by Playwright.

One server and one browser serve the whole module; each test opens a fresh
page on it. Playwright is told where Chromium is, so it never downloads one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("Chromium is missing: `make test` installs it", allow_module_level=True)

TIMEOUT_MS = 60_000  # two loaded cores: a first inspection may take seconds
FRAME_HEIGHT, FRAME_WIDTH = 180, 240
SHOTS = Path("/tmp/app-shots")  # screenshots of the views, to look at by eye


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, app_kit) -> Iterator[object]:
    root = tmp_path_factory.mktemp("app") / "runs"
    app_kit.write_run(root / "first", seed=0)
    app_kit.write_run(root / "second", epochs=4, seed=1)
    app_kit.write_run(root / "training", epochs=2, finished=False)
    # Per-class scores in class order, named only by the checkpoint's class names.
    scenes = app_kit.write_run(root / "scenes", classes=["sky", "road", "car"])
    metrics = {"model": "lenet5", "miou": 0.5, "iou_per_class": [0.75, 0.5, None], "epochs": 3}
    (scenes / "metrics.json").write_text(json.dumps(metrics))
    with app_kit.LiveServer(root) as live:
        live.picture = app_kit.png_bytes()
        live.frame = app_kit.png_bytes(FRAME_HEIGHT, FRAME_WIDTH)  # CamVid's 4:3 shape
        live.log_row = app_kit.log_row
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    outside, errors = [], []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on(
        "request",
        lambda r: (
            None
            if r.url.startswith(server.url) or r.url.startswith("data:")
            else outside.append(r.url)
        ),
    )
    yield opened
    context.close()
    assert not outside, f"the page asked another machine for {outside}"
    assert not errors, f"the page's script failed: {errors}"


def test_the_zoo_names_every_network_and_filters_by_family_and_task(page, server) -> None:
    from cnnzoo.models.registry import list_models

    page.goto(server.url + "/")
    page.wait_for_selector("#zoo-list li")
    names = page.locator("#zoo-list li").evaluate_all("items => items.map(i => i.dataset.name)")
    assert names == list_models()
    page.select_option("#task-filter", "segmentation")
    shown = page.locator("#zoo-list li").evaluate_all("items => items.map(i => i.dataset.name)")
    assert shown == list_models(task="segmentation")
    page.select_option("#task-filter", "")
    page.select_option("#family-filter", "LeNet")
    assert page.locator("#zoo-list li").count() == 2


def test_a_network_page_shows_blocks_layers_paper_and_a_pair(page, server) -> None:
    page.goto(server.url + "/#network=resnet20")
    page.wait_for_selector("#diagram .stage")
    assert "arXiv" in page.inner_text("#network-paper")
    assert page.locator("#diagram .stage[data-name='stage1']").count() == 1
    assert "stage3" in page.inner_text("#network-page table")
    page.select_option("#pair-first", "resnet20")
    page.select_option("#pair-second", "plain20")
    page.click("#pair-compare")
    page.wait_for_selector("#pair-result table")
    assert "plain20" in page.inner_text("#pair-result")


def _inspect(page, server, source: str) -> None:
    page.goto(server.url + "/#inspect")
    page.wait_for_selector(f"#source option[value='{source}']", state="attached")
    page.select_option("#source", source)
    page.set_input_files(
        "#upload", files=[{"name": "square.png", "mimeType": "image/png", "buffer": server.picture}]
    )
    page.wait_for_selector("#prediction-list li")


def test_an_uploaded_image_gets_predictions_and_a_grad_cam(page, server) -> None:
    _inspect(page, server, "run:first")
    predictions = page.locator("#prediction-list li").evaluate_all(
        "items => items.map(i => [i.dataset.class, Number(i.dataset.probability)])"
    )
    assert len(predictions) == 5
    assert all(name in [str(d) for d in range(10)] for name, _ in predictions)
    probabilities = [p for _, p in predictions]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1.0001
    assert page.get_attribute("#cam-image", "src").startswith("data:image/png")


def _info_fields(model: str, capsys) -> dict[str, list[float]]:
    from cnnzoo.cli import main

    assert main(["info", model, "--format", "json"]) == 0
    layers = json.loads(capsys.readouterr().out)["layers"]
    return {layer["name"]: layer["receptive_field"] for layer in layers}


def _click_unit(page, row_fraction: float, column_fraction: float) -> dict[str, float]:
    first = page.locator("#feature-maps img").first
    box = first.bounding_box()
    first.click(position={"x": box["width"] * column_fraction, "y": box["height"] * row_fraction})
    page.wait_for_selector("#rf-box")
    return page.locator("#rf-box").evaluate(
        "r => ({layer: r.dataset.layer, height: Number(r.getAttribute('height')), "
        "width: Number(r.getAttribute('width')), x: Number(r.getAttribute('x'))})"
    )


def test_clicking_a_unit_draws_the_receptive_field_cnnzoo_info_gives(page, server, capsys) -> None:
    fields = _info_fields("lenet5", capsys)
    _inspect(page, server, "run:first")
    for layer in ("c1", "s2", "c3", "c5.1"):  # 5, 6, 14 and 32 pixels: conv, pool, conv, conv
        if page.input_value("#feature-layer") != layer:
            page.select_option("#feature-layer", layer)
            page.wait_for_function(
                f"document.querySelector('#feature-title').textContent.startsWith('{layer}:')"
            )
        drawn = _click_unit(page, 0.05, 0.95)  # a corner unit: its box leaves the image
        assert drawn["layer"] == layer
        assert [drawn["height"], drawn["width"]] == fields[layer]
        page.evaluate("document.querySelector('#rf-box').remove()")
    assert page.is_visible("#erf-image")
    maps = page.locator("#feature-maps img").count()
    assert page.locator(".unit-marker").count() == maps  # the clicked unit, on every map
    assert "theoretical receptive field" in page.inner_text("#unit-info")


def test_switching_layers_shows_that_layers_maps(page, server) -> None:
    _inspect(page, server, "model:resnet20")
    page.select_option("#feature-layer", "stage1")
    page.wait_for_function(
        "document.querySelector('#feature-title').textContent.startsWith('stage1:')"
    )
    first = page.locator("#feature-maps img").first
    assert (first.get_attribute("data-height"), first.get_attribute("data-width")) == ("32", "32")
    page.select_option("#feature-layer", "stage3")
    page.wait_for_function(
        "document.querySelector('#feature-title').textContent.startsWith('stage3:')"
    )
    assert page.locator("#feature-maps img").first.get_attribute("data-height") == "8"
    page.select_option("#cam-layer", "stage2")
    page.wait_for_function("document.querySelector('#cam-caption').textContent.includes('stage2')")


def _box(page, selector: str) -> dict[str, float]:
    return page.locator(selector).first.evaluate(
        "n => { const r = n.getBoundingClientRect(); "
        "return {x: r.left, y: r.top, width: r.width, height: r.height}; }"
    )


def test_a_non_square_image_keeps_its_shape_and_its_receptive_field_box(page, server) -> None:
    page.goto(server.url + "/#inspect")
    source = "model:segnet_basic"  # segmentation networks see an image at its own size
    page.wait_for_selector(f"#source option[value='{source}']", state="attached")
    page.select_option("#source", source)
    frame = {"name": "frame.png", "mimeType": "image/png", "buffer": server.frame}
    page.set_input_files("#upload", files=[frame])
    page.wait_for_selector("#mask-overlay")
    ratio = FRAME_WIDTH / FRAME_HEIGHT
    for selector in ("#input-image", "#rf-overlay", "#cam-image", "#mask-overlay"):
        drawn = _box(page, selector)
        assert abs(drawn["width"] - ratio * drawn["height"]) <= 2, (selector, drawn)
        assert max(drawn["width"], drawn["height"]) == pytest.approx(256, abs=1)
    layer = "encoder.2"  # a 22x30 map: units a few pixels apart, boxes of some size
    page.select_option("#feature-layer", layer)
    page.wait_for_function(
        f"document.querySelector('#feature-title').textContent.startsWith('{layer}:')"
    )
    first = page.locator("#feature-maps img").first
    rows, columns = (int(first.get_attribute(f"data-{side}")) for side in ("height", "width"))
    drawn = _box(page, "#feature-maps img")
    assert abs(drawn["width"] * rows - drawn["height"] * columns) <= 2 * columns, drawn
    inside = first.evaluate("n => [n.clientWidth, n.clientHeight]")  # the click's frame
    row, column = 8, 21
    first.click(
        position={
            "x": inside[0] * (column + 0.5) / columns,
            "y": inside[1] * (row + 0.5) / rows,
        }
    )
    page.wait_for_selector("#rf-box")
    rectangle = page.locator("#rf-box")
    assert [int(rectangle.get_attribute(f"data-{key}")) for key in ("row", "column")] == [
        row,
        column,
    ]
    image = page.evaluate("state.image")
    status, unit = server.ask(
        f"/api/unit?source={source}&image={image}&layer={layer}&row={row}&column={column}"
    )
    assert status == 200, unit
    field = unit["theoretical"]
    assert float(rectangle.get_attribute("x")) == field["left"]
    assert float(rectangle.get_attribute("y")) == field["top"]
    # On the screen: input pixel (left, top) of the picture, one scale on both axes.
    picture, box = _box(page, "#input-image"), _box(page, "#rf-box")
    scale = picture["width"] / FRAME_WIDTH
    assert picture["height"] / FRAME_HEIGHT == pytest.approx(scale, abs=0.01)
    assert box["x"] == pytest.approx(picture["x"] + field["left"] * scale, abs=1.5)
    assert box["y"] == pytest.approx(picture["y"] + field["top"] * scale, abs=1.5)
    assert box["width"] == pytest.approx(field["width"] * scale, abs=1.5)
    assert box["height"] == pytest.approx(field["height"] * scale, abs=1.5)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / "inspect-240x180.png", full_page=True)


def test_the_per_class_table_names_the_classes_of_the_run(page, server) -> None:
    page.goto(server.url + "/#run=scenes")
    page.wait_for_selector("#run-page table:nth-of-type(2)")
    rows = (
        page.locator("#run-page table")
        .nth(1)
        .locator("tbody tr")
        .evaluate_all("rows => rows.map(r => [...r.cells].map(c => c.textContent))")
    )
    assert rows == [["sky", "iou", "0.750"], ["road", "iou", "0.500"], ["car", "iou", "-"]]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / "runs-per-class.png", full_page=True)


def test_a_bad_upload_is_a_message_in_the_page(page, server) -> None:
    _inspect(page, server, "run:first")
    page.set_input_files(
        "#upload",
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a picture"}],
    )
    page.wait_for_selector("#message:not([hidden])")
    assert "notes.txt is not an image" in page.inner_text("#message")


def test_a_run_shows_its_curves_and_a_training_run_updates_live(page, server) -> None:
    page.goto(server.url + "/#run=first")
    page.wait_for_selector("#loss-chart path.series")
    assert page.get_attribute("#loss-chart", "data-epochs") == "3"
    assert "lenet5" in page.inner_text("#run-page pre")
    page.goto(server.url + "/#run=training")
    page.wait_for_selector("#live")
    assert page.get_attribute("#score-chart", "data-epochs") == "2"
    log = Path(server.app.state.cnnzoo.runs_root) / "training" / "log.csv"
    log.write_text(log.read_text() + server.log_row(3) + "\n")
    page.wait_for_selector("#score-chart[data-epochs='3']", timeout=15_000)


def test_two_runs_compared_side_by_side(page, server) -> None:
    page.goto(server.url + "/#runs")
    page.wait_for_selector(".run-select")
    page.check(".run-select[value='first']")
    page.check(".run-select[value='second']")
    page.click("#compare-runs")
    page.wait_for_selector("#comparison-chart circle.point")
    text = page.inner_text("#comparison-table")
    assert "lenet5 (first)" in text and "lenet5 (second)" in text
    assert page.locator("#comparison-chart circle.point").count() == 2


def test_the_experiments_view_lists_the_claims(page, server) -> None:
    from cnnzoo.experiments.base import list_experiments

    page.goto(server.url + "/#experiments")
    page.wait_for_selector(".experiment-link")
    assert page.locator(".experiment-link").count() == len(list_experiments())
    page.locator(".experiment-link").first.click()
    page.wait_for_selector("#experiment-title")
    assert "Claim" in page.inner_text("#experiment-page")
