"""Every test here reads weights from its own temporary torch hub cache, and nothing downloads.

The weight files are written by the tests: random tensors with the names and
shapes of torchvision's network, saved under the exact file name torchvision
gives its released weights.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torchvision

from cnnzoo.models.weights import hub

WriteWeights = Callable[..., dict[str, torch.Tensor]]


def random_torchvision_state(architecture: str, **options: object) -> dict[str, torch.Tensor]:
    """torchvision's ``architecture`` as a state dict of random values (positive variances).

    Built from the shapes of a network on the meta device: filling the tensors
    directly costs a fraction of torchvision's own initialisation.
    """
    generator = torch.Generator().manual_seed(0)
    with torch.device("meta"):
        shapes = torchvision.models.get_model(architecture, weights=None, **options).state_dict()
    state = {}
    for key, tensor in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros((), dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.rand(tensor.shape, generator=generator) + 0.5
        else:
            state[key] = torch.empty(tensor.shape).uniform_(-0.05, 0.05, generator=generator)
    return state


def save_weights(folder: Path, architecture: str, state: dict[str, torch.Tensor]) -> None:
    """Save ``state`` where the hub looks for ``architecture``'s weights."""
    (folder / "hub" / "checkpoints").mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / "hub" / "checkpoints" / hub.weights_file_name(architecture))


def _no_download(url: str, destination: Path, timeout: float = 0) -> None:
    raise OSError("no network in the tests")


@pytest.fixture(autouse=True)
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache of the test's own, and downloads that always fail."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # a set_dir elsewhere would win over it
    monkeypatch.setattr(hub, "download_weights", _no_download)
    return tmp_path


@pytest.fixture
def write_weights(torch_home: Path) -> WriteWeights:
    """Write random weights of torchvision's ``architecture`` into the cache; return them.

    ``saved_as`` another architecture puts them under that one's file name.
    """

    def write(
        architecture: str, saved_as: str | None = None, **options: object
    ) -> dict[str, torch.Tensor]:
        state = random_torchvision_state(architecture, **options)
        save_weights(torch_home, saved_as or architecture, state)
        return state

    return write


@pytest.fixture(scope="session")
def vgg_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hub cache holding VGG-16 and VGG-16-BN weights, written once: each is 528 MB."""
    folder = tmp_path_factory.mktemp("vgg_torch_home")
    for architecture in ("vgg16", "vgg16_bn"):
        save_weights(folder, architecture, random_torchvision_state(architecture))
    return folder
