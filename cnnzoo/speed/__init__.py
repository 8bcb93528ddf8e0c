"""Speed: benchmarking, inference fast paths (conv-BN folding) and export to ONNX / TorchScript."""

from cnnzoo.speed.fold import (
    ConvBatchNormPair,
    find_conv_batchnorm_pairs,
    fold_conv_batchnorm,
    fold_pairs,
)

__all__ = ["ConvBatchNormPair", "find_conv_batchnorm_pairs", "fold_conv_batchnorm", "fold_pairs"]
