"""Receptive fields: hand-checked values, multi-branch graphs, and the gradient check.

Every registered classifier is checked from the registry: the analytic field of
each stage equals the support of a centre unit's gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import cnnzoo
from cnnzoo.analysis.receptive_field import (
    ReceptiveFieldTracker,
    field_of,
    receptive_fields,
    track_input,
    verifiable_layers,
    verify_receptive_field,
)
from cnnzoo.models.layers.squeeze_excite import SqueezeExcite
from cnnzoo.models.registry import get_model_entry

CLASSIFIERS = cnnzoo.list_models(task="classification")

# Published receptive fields, by hand from the papers' layer tables (kernel, stride):
# AlexNet conv1 11/4 -> 11, pool1 3/2 -> 11 + 2*4 = 19, conv2 5/1 -> 19 + 4*8 = 51;
# VGG-16 conv5_3 -> 196 and pool5 -> 212 (Araujo et al., Distill 2019, Table 1).
PUBLISHED_FIELDS = {
    ("alexnet", "conv1"): 11,
    ("alexnet", "pool1"): 19,
    ("alexnet", "conv2"): 51,
    ("vgg16", "features.block5.conv5_3"): 196,
    ("vgg16", "features.block5.pool5"): 212,
    ("resnet50", "layer4"): 427,  # torchvision layout (stride on the 3x3 conv)
}


def _meta_model(name: str, **options) -> nn.Module:
    with torch.device("meta"):
        return cnnzoo.create_model(name, num_classes=10, **options)


@pytest.mark.parametrize(("key", "field"), list(PUBLISHED_FIELDS.items()), ids=str)
def test_published_receptive_fields(key: tuple[str, str], field: int) -> None:
    name, layer = key
    if name not in cnnzoo.list_models():
        pytest.skip(f"{name} is not registered")
    fields = receptive_fields(_meta_model(name), (3, 224, 224))
    assert fields[layer].size == (field, field)


# --- small graphs with a known answer ---------------------------------------------------


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 2, 3, padding=1)
        self.conv2 = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(torch.relu(self.conv1(x))) + x


class Inception(nn.Module):
    """Branches of different reach concatenated: the field is the widest branch's."""

    def __init__(self) -> None:
        super().__init__()
        self.one = nn.Conv2d(2, 2, 1)
        self.three = nn.Sequential(nn.Conv2d(2, 2, 1), nn.Conv2d(2, 2, 3, padding=1))
        self.five = nn.Sequential(nn.Conv2d(2, 2, 1), nn.Conv2d(2, 2, 5, padding=2))
        self.pool = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(2, 2, 1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.one(x), self.three(x), self.five(x), self.pool(x)], 1)


class ValidSkip(nn.Module):
    """U-Net style: an unpadded path and a cropped skip that must line up again."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(2, 2, 3), nn.Conv2d(2, 2, 3))  # valid: loses 2 a side

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.conv(x), x[:, :, 2:-2, 2:-2]], 1)


class Gated(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.se = SqueezeExcite(4, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.se(self.conv(x))


def test_residual_field_is_the_largest_path() -> None:
    fields = receptive_fields(Residual(), (2, 16, 16))
    assert fields["conv2"].size == (5, 5)
    (check,) = verify_receptive_field(Residual(), (2, 16, 16), ["conv2"])
    assert check.agrees and check.gradient_size == (5, 5)


def test_inception_branches_merge_to_the_widest() -> None:
    model = nn.Sequential(Inception(), nn.Conv2d(8, 2, 3, padding=1))
    fields = receptive_fields(model, (2, 20, 20))
    assert fields["0"].size == (5, 5) and fields["1"].size == (7, 7)
    assert all(c.agrees for c in verify_receptive_field(model, (2, 20, 20), ["0", "1"]))


class SummedRates(nn.Module):
    """DeepLab v2's ASPP: parallel dilated branches summed through a stacked tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.branches = nn.ModuleList(nn.Conv2d(1, 1, 3, padding=r, dilation=r) for r in (1, 4))

    def forward(self, x: Tensor) -> Tensor:
        return torch.stack([branch(x) for branch in self.branches]).sum(0)


def test_stacked_branches_stay_local() -> None:
    fields = receptive_fields(nn.Sequential(SummedRates()), (1, 24, 24))
    assert fields["0"].size == (9, 9) and not fields["0"].is_global  # rate 4: 1 + 2 * 4
    (check,) = verify_receptive_field(nn.Sequential(SummedRates()), (1, 24, 24), ["0"])
    assert check.agrees


def test_dilation_padding_and_stride() -> None:
    model = nn.Sequential(
        nn.Conv2d(1, 1, 3, stride=2),  # rf 3, jump 2, unit 0 centred on pixel 1
        nn.Conv2d(1, 1, 3, dilation=2, padding=2),  # rf 3 + 4 * 2 = 11
        nn.MaxPool2d(2, ceil_mode=True),  # rf 11 + 1 * 2 = 13, jump 4
        nn.Conv2d(1, 1, 3, dilation=3, padding=1),  # valid-ish: rf 13 + 6 * 4 = 37
    )
    fields = receptive_fields(model, (1, 64, 64))
    assert [fields[str(i)].height.extent for i in range(4)] == [3, 11, 13, 37]
    assert [fields[str(i)].height.jump for i in range(4)] == [2, 2, 4, 4]
    assert fields["0"].height.start == 1
    checks = verify_receptive_field(model, (1, 64, 64), ["0", "1", "2", "3"])
    assert all(c.agrees for c in checks), checks


def test_field_clipped_at_the_border_is_compared_clipped() -> None:
    model = nn.Sequential(*(nn.Conv2d(1, 1, 3, padding=1) for _ in range(10)))  # rf 21
    (check,) = verify_receptive_field(model, (1, 12, 12), ["9"])
    assert check.clipped and check.agrees and check.gradient_size == (12, 12)
    assert check.analytic_size == (21, 21)


def test_cropped_skip_lines_up() -> None:
    fields = receptive_fields(ValidSkip(), (2, 16, 16))
    assert fields["conv"].size == (5, 5) and fields["conv"].height.start == 2
    (check,) = verify_receptive_field(ValidSkip(), (2, 16, 16), ["conv"])
    assert check.agrees


def test_squeeze_excitation_is_global_context_and_keeps_the_local_field() -> None:
    fields = receptive_fields(Gated(), (4, 12, 12))
    assert fields["se"].size == (3, 3) and fields["se"].global_context
    assert fields["se.fc1"].is_global
    (check,) = verify_receptive_field(Gated(), (4, 12, 12), ["se"])
    assert check.agrees


def test_global_pooling_sees_the_whole_input() -> None:
    model = nn.Sequential(nn.Conv2d(1, 1, 3, stride=2, padding=1), nn.AdaptiveAvgPool2d(1))
    fields = receptive_fields(model, (1, 32, 32))
    # 16 units, 2 pixels apart, each seeing 3: from pixel -1 to 31, i.e. 33 pixels.
    assert fields["1"].is_global and fields["1"].size == (33, 33)
    assert verifiable_layers(fields) == ["0"]


class UpDown(nn.Module):
    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.down = nn.Conv2d(1, 1, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(1, 1, 6, stride=2, padding=2)

    def forward(self, x: Tensor) -> Tensor:
        y = self.down(x)
        if self.mode == "transposed":
            return self.up(y)
        if self.mode == "unpool":
            pooled, indices = F.max_pool2d(y, 2, return_indices=True)
            return F.max_unpool2d(pooled, indices, 2)
        return F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)


@pytest.mark.parametrize(("mode", "field"), [("transposed", 7), ("bilinear", 5), ("unpool", 5)])
def test_upsampling_gives_an_upper_bound(mode: str, field: int) -> None:
    # The 3x3/2 map (rf 3, jump 2): a 6x6/2 transposed conv feeds each output from
    # 3 inputs (rf 3 + 2 * 2), bilinear x2 from 2 (rf 3 + 2), max-unpooling from the
    # one pooled unit whose 2x2 window (rf 3 + 2) covers it.
    model = UpDown(mode)
    with ReceptiveFieldTracker():
        out_field = field_of(model(track_input(torch.zeros(1, 1, 32, 32))))
    assert out_field.size == (field, field) and not out_field.exact
    assert receptive_fields(model, (1, 32, 32))["down"].exact


# --- every registered classifier ----------------------------------------------------


def _check_input(name: str) -> tuple[int, int, int]:
    """The smallest multiple of 32 (at least the model's minimum) on which the first
    stage's field fits, so that stage is checked unclipped."""
    model = _meta_model(name)
    size = max(get_model_entry(name).min_size, 32)
    first_stage = receptive_fields(model, (3, size, size))[model.feature_info[0].name]
    side = max(size, 32 * (int(first_stage.height.extent) // 32 + 1))
    return 3, side, side


# Networks too deep to check in the fast suite (float64, one backward pass per stage).
SLOW_TO_CHECK = {"resnet1202": "1,202 layers: about 15 s"}


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_TO_CHECK else n for n in CLASSIFIERS],
)
def test_analytic_field_equals_gradient_support(name: str) -> None:
    checks = verify_receptive_field(_meta_model(name), _check_input(name))
    assert len(checks) >= 2, f"{name}: the check needs the stages and the deepest map"
    failures = [c for c in checks if not c.agrees]
    assert not failures, failures
    assert any(not c.clipped for c in checks), "choose an input where some field fits"


@pytest.mark.slow
@pytest.mark.parametrize("name", cnnzoo.list_models(task="segmentation"))
def test_segmentation_fields_equal_gradient_support(name: str) -> None:
    # The deepest layer whose fields step evenly (before the upsampling), at 64x64.
    model = _meta_model(name)
    (check,) = verify_receptive_field(model, (3, 64, 64))
    assert check.agrees, check
