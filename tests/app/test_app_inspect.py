"""The Inspect answers beyond the browser tests: segmentation masks, IoU, SE gates, the ERF."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def _mask_png(height: int, width: int) -> bytes:
    mask = np.zeros((height, width), np.uint8)
    mask[: height // 2] = 1
    buffer = io.BytesIO()
    Image.fromarray(mask, "L").save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_segmentation_network_draws_its_mask_with_a_legend_and_iou_given_a_mask(
    live_server, app_kit
) -> None:
    image = live_server.upload(app_kit.png_bytes(48, 48))
    status, answer = live_server.ask(
        f"/api/images?name=mask.png&mask_for={image}", _mask_png(48, 48)
    )
    assert status == 200, answer
    status, answer = live_server.ask(f"/api/inspect?source=model:segnet_basic&image={image}")
    assert status == 200, answer
    segmentation = answer["segmentation"]
    assert segmentation["overlay"].startswith("data:image/png")
    assert segmentation["legend"] and all(
        c["colour"].startswith("#") for c in segmentation["legend"]
    )
    ious = segmentation["iou"]
    assert len(ious) == 21  # VOC's classes, the default of a fresh segmentation network
    assert all(c["iou"] is None or 0 <= c["iou"] <= 1 for c in ious)


def test_a_mask_of_another_size_is_refused(live_server, app_kit) -> None:
    image = live_server.upload(app_kit.png_bytes(48, 48))
    status, answer = live_server.ask(
        f"/api/images?name=mask.png&mask_for={image}", _mask_png(20, 20)
    )
    assert status == 400 and "the mask is 20x20 but the image is 48x48" in answer["error"]


def test_se_gates_are_one_per_channel_between_zero_and_one(live_server, app_kit) -> None:
    image = live_server.upload(app_kit.png_bytes())
    status, answer = live_server.ask(f"/api/inspect?source=model:se_resnet20&image={image}")
    assert status == 200 and answer["se_blocks"]
    block = answer["se_blocks"][0]
    status, answer = live_server.ask(
        f"/api/se?source=model:se_resnet20&image={image}&block={block}"
    )
    assert status == 200 and answer["block"] == block
    assert len(answer["gates"]) == 16 and all(0 < g < 1 for g in answer["gates"])


def test_the_effective_field_lies_inside_the_theoretical_one(live_server, app_kit) -> None:
    image = live_server.upload(app_kit.png_bytes())
    status, answer = live_server.ask(
        f"/api/unit?source=run:first&image={image}&layer=c3&row=4&column=5"
    )
    assert status == 200, answer
    theory, support = answer["theoretical"], answer["effective"]["box"]
    assert (theory["height"], theory["width"]) == (14, 14)
    assert theory["top"] <= support["top"] <= support["bottom"] <= theory["bottom"]
    assert theory["left"] <= support["left"] <= support["right"] <= theory["right"]
    assert answer["effective"]["picture"].startswith("data:image/png")
