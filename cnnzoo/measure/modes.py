"""A network's training/evaluation mode, switched for the length of a measurement.

Counting, timing, probing memory or explaining a prediction all want the
network as it infers (batch norm on its running statistics, no dropout, no
auxiliary heads), and the caller's model should come back in whatever mode it
was lent in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Evaluation mode for the duration, then the model's own mode again."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
