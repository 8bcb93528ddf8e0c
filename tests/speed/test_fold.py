"""Folding batch norms into convolutions keeps every network's outputs (to 1e-4 relative)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn

import cnnzoo
from cnnzoo.models.registry import get_model_entry
from cnnzoo.speed import find_conv_batchnorm_pairs, fold_conv_batchnorm

# float32 rounding: folding rescales weights by gamma / sqrt(var + eps), and in depthwise
# layers with small variances that amplifies the last bits (3e-5 seen on MobileNet-v2 with
# one thread); a wrong fold is off by order 1.
RELATIVE_TOLERANCE = 1e-4


def _with_batchnorm(name: str) -> bool:
    with torch.device("meta"):
        model = cnnzoo.create_model(name, num_classes=5)
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


WITH_BATCHNORM = [n for n in cnnzoo.list_models() if _with_batchnorm(n)]
# Pre-activation networks (BN -> ReLU -> conv) whose every batch norm reads a concatenation
# or a block input also read elsewhere: nothing may be folded.
NOTHING_TO_FOLD = {"densenet40_k12"}
# A fast share for the default suite: one network of each block kind that is registered.
FAST = [
    n
    for n in ("resnet18", "googlenet", "mobilenet_v2", "efficientnet_b0", "segnet_basic")
    if n in WITH_BATCHNORM
]


def _randomise_batchnorm(model: nn.Module, calibration_input: Tensor | None = None) -> None:
    """Affine parameters and statistics away from (1, 0) and (0, 1), as training leaves them.

    With ``calibration_input`` the statistics are those of the network's own
    activations (a cumulative average over two batches), which keeps the
    eval-mode outputs of very deep networks finite.
    """
    generator = torch.Generator().manual_seed(1)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for module in norms:
        channels = module.num_features
        module.running_mean.copy_(torch.randn(channels, generator=generator) * 0.5)
        module.running_var.copy_(torch.rand(channels, generator=generator) + 0.5)
        if module.affine:
            module.weight.data.copy_(torch.rand(channels, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(channels, generator=generator) * 0.2)
    if calibration_input is not None:
        for module in norms:
            module.reset_running_stats()
            module.momentum = None
        model.train()
        with torch.no_grad():
            for _ in range(2):
                model(calibration_input)
        model.eval()


def _assert_close(expected: Tensor, actual: Tensor, float32_error: float = 0.0) -> None:
    """Within 1e-4 of the largest output, or twice the network's own float32 error.

    A deep network with random weights (ResNet-152, Plain-110) computes its outputs in
    float32 only to 3e-4 relative or worse (against float64); folding moves the rounding,
    not the function, which a wrong fold would change by order 1.
    """
    scale = expected.abs().max().item()
    assert torch.isfinite(expected).all()
    allowed = max(RELATIVE_TOLERANCE * scale, 2 * float32_error)
    assert (expected - actual).abs().max().item() <= allowed


def _check_model(name: str) -> None:
    entry = get_model_entry(name)
    model = cnnzoo.create_model(name, num_classes=5).eval()
    # 64 pixels leave 2x2 maps at stride 32, so the calibrated variances are not degenerate.
    size = max(entry.min_size, 64)
    x = torch.randn(2, 3, size, size)
    _randomise_batchnorm(model, calibration_input=torch.randn(8, 3, size, size))
    folded = fold_conv_batchnorm(model, x[:1])
    with torch.no_grad():
        expected = model(x)
        float64 = copy.deepcopy(model).double()(x.double())
        float32_error = (expected.double() - float64).abs().max().item()
        _assert_close(expected, folded(x), float32_error)
    remaining = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    total = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if name in NOTHING_TO_FOLD:
        assert remaining == total
    else:
        assert remaining < total, "nothing was folded"


@pytest.mark.parametrize("name", FAST)
def test_folding_keeps_outputs(name: str) -> None:
    _check_model(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in WITH_BATCHNORM if n not in FAST])
def test_folding_keeps_outputs_of_every_network(name: str) -> None:
    _check_model(name)


def test_every_convolution_of_resnet18_absorbs_its_batchnorm() -> None:
    if "resnet18" not in cnnzoo.list_models():
        pytest.skip("resnet18 is not registered")
    model = cnnzoo.create_model("resnet18")
    pairs = find_conv_batchnorm_pairs(model, torch.randn(1, 3, 32, 32))
    convolutions = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert sorted(p.convolution for p in pairs) == sorted(convolutions)  # 17 + 3 shortcuts


def test_sequential_stack_with_transposed_convolution() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.ConvTranspose2d(8, 4, 2, stride=2),
        nn.BatchNorm2d(4),
    ).eval()
    _randomise_batchnorm(model)
    x = torch.randn(2, 3, 8, 8)
    folded = fold_conv_batchnorm(model, x)
    assert [type(m) for m in folded] == [nn.Conv2d, nn.Identity, nn.ReLU, nn.ConvTranspose2d,
                                          nn.Identity]  # fmt: skip
    with torch.no_grad():
        _assert_close(model(x), folded(x))
    assert isinstance(model[1], nn.BatchNorm2d), "the original model must be left untouched"


class _ConvOutputReadTwice(nn.Module):
    """The convolution's raw output is also added back: folding would change that sum."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        return self.bn(y) + y


class _SharedConvolution(nn.Module):
    """One convolution applied twice, followed by a batch norm only the second time."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(torch.relu(self.conv(x))))


class _ConvOutputReturned(nn.Module):
    """Feature-extractor style: the convolution's output is returned as well."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x: Tensor) -> list[Tensor]:
        y = self.conv(x)
        return [y, self.bn(y)]


@pytest.mark.parametrize("module", [_ConvOutputReadTwice, _SharedConvolution, _ConvOutputReturned])
def test_unsafe_pairs_are_left_alone(module: type[nn.Module]) -> None:
    model = module().eval()
    _randomise_batchnorm(model)
    x = torch.randn(2, 4, 6, 6)
    assert find_conv_batchnorm_pairs(model, x) == []
    folded = fold_conv_batchnorm(model, x)
    with torch.no_grad():
        expected, actual = model(x), folded(x)
    for want, got in zip(expected if isinstance(expected, list) else [expected],
                         actual if isinstance(actual, list) else [actual]):  # fmt: skip
        assert torch.equal(want, got)


def test_batchnorm_without_running_statistics_is_not_folded() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, track_running_stats=False))
    assert find_conv_batchnorm_pairs(model, torch.randn(2, 3, 8, 8)) == []


def test_tracing_restores_training_mode() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train()
    find_conv_batchnorm_pairs(model, torch.randn(2, 3, 8, 8))
    assert model.training and model[1].training
