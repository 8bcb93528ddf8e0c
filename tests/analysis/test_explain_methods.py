"""Grad-CAM, feature maps and SE weights on networks whose answer is known by hand."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cnnzoo.analysis.feature_maps import feature_maps, most_active
from cnnzoo.analysis.gradcam import grad_cam
from cnnzoo.analysis.se_weights import resolve_se_block, se_blocks, se_channel_weights
from cnnzoo.models.layers.squeeze_excite import SqueezeExcite


class SquareDetector(nn.Module):
    """Channel 0 copies the image, channel 1 its negative; class k reads channel k."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Conv2d(1, 2, 1, bias=False)
        self.features.weight.data = torch.tensor([1.0, -1.0]).view(2, 1, 1, 1)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(2, 2, bias=False)
        self.head.weight.data = torch.eye(2)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.pool(self.relu(self.features(x))).flatten(1))


def _square_image() -> Tensor:
    image = torch.full((1, 1, 16, 16), -0.5)
    image[..., 2:7, 9:14] = 1.0  # a bright square top right on a dark background
    return image


def test_gradcam_lights_up_the_evidence_for_each_class() -> None:
    model, image = SquareDetector(), _square_image()
    square = image[0, 0] > 0
    bright = grad_cam(model, image, "relu", class_index=0)
    # Class 0 sums the bright pixels: its map is the square, peaking at 1.
    assert bright.heatmap[square].min() == 1.0 and bright.heatmap[~square].max() < 0.1
    dark = grad_cam(model, image, "relu", class_index=1)
    # Class 1 sums the dark pixels: the evidence is everywhere but the square.
    assert dark.heatmap[~square].mean() > 0.9 and dark.heatmap[square].mean() < 0.1
    # By default the top class: 231 dark pixels at 0.5 outscore 25 bright ones at 1.
    assert grad_cam(model, image, "relu").class_index == 1


def test_feature_maps_and_the_most_active_channels() -> None:
    model, image = SquareDetector(), _square_image()
    maps = feature_maps(model, image, "relu")
    assert maps.shape == (2, 16, 16)
    assert torch.equal(maps[0], image[0, 0].clamp(min=0))
    assert most_active(maps, 2) == [1, 0]  # the dark background covers more pixels


def test_se_weights_are_the_gate_of_the_block() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), SqueezeExcite(4, 2))
    image = torch.randn(1, 1, 8, 8)
    assert se_blocks(model) == ["1"] and resolve_se_block(model, None) == "1"
    weights = se_channel_weights(model, image, "1")
    se = model[1]
    expected = se.excitation(se.squeeze(model[0](image)))[0].flatten()
    torch.testing.assert_close(weights, expected.detach())
    assert weights.shape == (4,) and ((weights > 0) & (weights < 1)).all()
