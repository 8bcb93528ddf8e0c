"""SegNet: the paper's parameter count, and max-unpooling at exactly the encoder's indices."""

from __future__ import annotations

import torch
import torch.nn.functional as F

import cnnzoo


def test_parameter_count_of_the_paper() -> None:
    with torch.device("meta"):
        model = cnnzoo.create_model("segnet", num_classes=11, in_channels=3)
    assert sum(p.numel() for p in model.parameters()) == 29_449_355


def test_segnet_basic_is_four_7x7_layers_of_64_without_decoder_relu_or_bias() -> None:
    model = cnnzoo.create_model("segnet_basic", num_classes=11)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size for c in convs[:-1]] == [(7, 7)] * 8
    assert all(c.out_channels == 64 and c.bias is None for c in convs[:-1])
    assert not any(isinstance(m, torch.nn.ReLU) for m in model.decoder.modules())
    assert convs[-1].kernel_size == (1, 1) and convs[-1].out_channels == 11
    narrow = cnnzoo.create_model("segnet_basic", num_classes=11, width=16)
    assert {m.out_channels for m in narrow.modules() if isinstance(m, torch.nn.Conv2d)} == {16, 11}


def test_unpooling_puts_each_value_at_its_recorded_index() -> None:
    x = torch.randn(2, 3, 9, 11)
    pooled, indices = F.max_pool2d(x, 2, 2, return_indices=True)
    unpool = cnnzoo.create_model("segnet_basic", 4).decoder[0].unpool
    unpooled = unpool(pooled, indices, output_size=x.shape[-2:])
    expected = torch.zeros(2, 3, 9 * 11).scatter_(2, indices.flatten(2), pooled.flatten(2))
    assert torch.equal(unpooled, expected.view(2, 3, 9, 11))
    # The maxima are back where they were; everything else is zero.
    assert torch.equal(unpooled[unpooled != 0], x[unpooled != 0])
    assert (unpooled != 0).sum() == pooled.numel()


def test_the_decoder_uses_the_encoders_indices() -> None:
    model = cnnzoo.create_model("segnet", 5, 1).eval()
    recorded, used = [], []
    for stage in model.encoder:
        stage.pool.register_forward_hook(lambda m, i, o: recorded.append((i[0], o[1])))
    for stage in model.decoder:
        stage.unpool.register_forward_hook(lambda m, i, o: used.append(i[1]))
    with torch.no_grad():
        model(torch.randn(1, 1, 45, 67))
    for (pre_pool, indices), decoder_indices in zip(recorded, reversed(used)):
        _, expected = F.max_pool2d(pre_pool, 2, 2, return_indices=True)
        assert torch.equal(indices, expected)
        assert torch.equal(decoder_indices, indices)
