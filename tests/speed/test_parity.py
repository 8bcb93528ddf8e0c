"""Never the slow copy: where torchvision has the same network, ours runs no more operations.

Timings on a shared machine are noisy; operation counts are not. A training
step (forward and backward) and an inference pass are recorded at the ATen
level for both networks; ours must run no more operations and write no more
bytes into freshly allocated tensors. Inference uses cnnzoo's inference path
(batch norms folded into convolutions), as ``cnnzoo benchmark`` does.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch
import torchvision
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

import cnnzoo
from cnnzoo.models.registry import get_model_entry
from cnnzoo.speed import fold_conv_batchnorm
from cnnzoo.speed.benchmark import TORCHVISION_OPTIONS, training_loss

# The networks the speed comparison covers (README, section Speed).
COMPARED = [
    "resnet18",
    "resnet50",
    "vgg16",
    "googlenet",
    "densenet121",
    "mobilenet_v2",
    "efficientnet_b0",
]


class _OperationLog(TorchDispatchMode):
    """Counts ATen operations and the bytes each out-of-place one allocates."""

    def __init__(self) -> None:
        super().__init__()
        self.operations: Counter[str] = Counter()
        self.allocated_bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        result = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        self.operations[name] += 1
        in_place = name.endswith("_") or "out" in (kwargs or {})
        if isinstance(result, torch.Tensor) and not in_place and not result._is_view():
            self.allocated_bytes += result.numel() * result.element_size()
        return result


def _log(model: torch.nn.Module, mode: str) -> _OperationLog:
    images = torch.randn(2, 3, 64, 64)
    targets = torch.randint(0, 10, (2,))
    log = _OperationLog()
    if mode == "train":
        model.train()
        with log:
            training_loss(model(images), targets).backward()
    else:
        model.eval()
        with torch.inference_mode(), log:
            model(images)
    return log


@pytest.mark.parametrize("mode", ["train", "infer"])
@pytest.mark.parametrize("name", [n for n in COMPARED if n in cnnzoo.list_models()])
def test_no_more_work_than_torchvision(name: str, mode: str) -> None:
    entry = get_model_entry(name)
    theirs = torchvision.models.get_model(
        entry.torchvision, weights=None, num_classes=10, **TORCHVISION_OPTIONS.get(name, {})
    )
    ours = cnnzoo.create_model(name, num_classes=10)
    ours.load_state_dict(entry.from_torchvision(theirs.state_dict()))
    if mode == "infer":
        ours = fold_conv_batchnorm(ours, torch.randn(1, 3, 64, 64))
    our_log, their_log = _log(ours, mode), _log(theirs, mode)
    assert sum(our_log.operations.values()) <= sum(their_log.operations.values()), (
        our_log.operations - their_log.operations
    )
    assert our_log.allocated_bytes <= their_log.allocated_bytes


def test_vgg_head_on_a_1x1_pool5_map_computes_what_torchvision_does() -> None:
    """At 32x32 VGG's fc6 sums its 49 repeated weights instead of repeating the map."""
    if "vgg11" not in cnnzoo.list_models():
        pytest.skip("vgg11 is not registered")
    theirs = torchvision.models.vgg11(num_classes=10)
    ours = cnnzoo.create_model("vgg11", num_classes=10)
    ours.load_state_dict(get_model_entry("vgg11").from_torchvision(theirs.state_dict()))
    images = torch.randn(2, 3, 32, 32)
    outputs = []
    for model in (ours.eval(), theirs.eval()):
        output = model(images)
        output.square().sum().backward()
        outputs.append(output)
    assert torch.allclose(outputs[0], outputs[1], atol=1e-6)
    assert torch.allclose(ours.fc6.weight.grad, theirs.classifier[0].weight.grad, atol=1e-6)
    flops = []
    for model in (ours, theirs):
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(images)
        flops.append(counter.get_total_flops())
    fc6_saving = 2 * 2 * 512 * 4096 * 48  # batch x 2 FLOPs per multiply-add x 48 of 49 weights
    assert flops[1] - flops[0] == fc6_saving
