"""Export a network to ONNX or TorchScript, and check that it still computes the same function.

* ONNX goes through ``torch.onnx.export(..., dynamo=True)``: the graph is
  captured with ``torch.export`` and translated to ONNX opset
  :data:`ONNX_OPSET`, the exporter PyTorch develops (the TorchScript-based
  one is deprecated). The batch dimension stays dynamic.
* TorchScript goes through ``torch.jit.trace``, which records the operations
  one example runs; our networks keep data-dependent Python (input checks,
  padding to a stride) out of the traced path, so the trace is valid for any
  batch size. PyTorch marks TorchScript as deprecated; it is offered for
  runtimes (C++ ``torch::jit::load``, older mobile tool chains) that still
  load it.

Every export is verified the way a user would: the saved file is loaded by
its runtime (onnxruntime, ``torch.jit.load``), run on a fresh input of a
different batch size, and compared with the PyTorch model. The difference
must stay within :data:`TOLERANCE` (1e-4), or, for a network whose own
float32 rounding is larger than that (deep networks with large outputs), within
twice PyTorch's own float32 error, measured against the same network in
float64: two float32 runtimes that add up the same products in different
orders can differ by that much, and no more, without either being wrong.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from cnnzoo.errors import CnnzooError

FORMATS = ("onnx", "torchscript")
ONNX_OPSET = 18  # ONNX 1.13 (2022): every operator our networks use, supported by onnxruntime
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}
TOLERANCE = 1e-4  # max |exported - PyTorch| in float32 for outputs of order one


@dataclass(frozen=True)
class ExportReport:
    """Where an exported model went and how closely it matches PyTorch."""

    path: Path
    format: str
    input_shape: tuple[int, ...]  # the (N, C, H, W) shape the check ran on
    max_abs_diff: float  # largest |exported - PyTorch| over every output value
    output_scale: float  # largest |PyTorch output|
    float32_error: float  # largest |PyTorch in float32 - PyTorch in float64|

    @property
    def tolerance(self) -> float:
        """The largest ``max_abs_diff`` that still means "the same function" (module docstring)."""
        return max(TOLERANCE, 2 * self.float32_error)

    @property
    def matches(self) -> bool:
        return self.max_abs_diff <= self.tolerance


def export_model(
    model: nn.Module,
    input_size: tuple[int, int, int],
    path: Path,
    export_format: str,
    *,
    metadata: dict[str, str] | None = None,
    check_batch: int = 3,
) -> ExportReport:
    """Write ``model`` (set to eval mode) to ``path`` and check the saved file against it.

    The export traces a batch of two images of ``input_size`` (C, H, W); the
    check runs the saved file on ``check_batch`` fresh images, so a batch
    size baked in by mistake would be caught. ``metadata`` (class names,
    normalisation, ...) is embedded: as ONNX ``metadata_props``, or as the
    TorchScript archive's extra file ``cnnzoo.json``.
    """
    if export_format not in FORMATS:
        raise CnnzooError(f"unknown export format {export_format!r}; use one of {FORMATS}")
    model = model.eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.randn(2, *input_size)
    check = torch.randn(check_batch, *input_size)
    with torch.no_grad():
        expected = model(check)
    if export_format == "onnx":
        _write_onnx(model, example, path, metadata or {})
        actual = run_onnx(path, check)
    else:
        _write_torchscript(model, example, path, metadata or {})
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # TorchScript's deprecation notice
            actual = torch.jit.load(str(path))(check)
    difference = _max_abs_diff(expected, actual)
    scale = max(t.abs().max().item() for t in _as_list(expected))
    float32_error = _max_abs_diff(expected, _float64_outputs(model, check))
    return ExportReport(path, export_format, tuple(check.shape), difference, scale, float32_error)


def _float64_outputs(model: nn.Module, images: Tensor) -> Tensor | list[Tensor]:
    """The outputs of a float64 copy of ``model``: a reference free of float32 rounding."""
    reference = copy.deepcopy(model).double()
    with torch.no_grad():
        return reference(images.double())


def run_onnx(path: Path, images: Tensor) -> Tensor | list[Tensor]:
    """Run an exported ONNX file with onnxruntime on CPU."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {session.get_inputs()[0].name: images.numpy()})
    tensors = [torch.from_numpy(output) for output in outputs]
    return tensors[0] if len(tensors) == 1 else tensors


def _write_onnx(model: nn.Module, example: Tensor, path: Path, metadata: dict[str, str]) -> None:
    batch = torch.export.Dim("batch", min=1)
    # The exporter reports each stage on stdout; a command prints only its result.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                opset_version=ONNX_OPSET,
                input_names=["images"],
                dynamic_shapes=({0: batch},),
                external_data=False,
            )
        except Exception as error:  # the exporter raises many types; each means "cannot express"
            raise CnnzooError(
                f"ONNX cannot express {type(model).__name__}: {str(error).strip().splitlines()[0]}"
            ) from error
        program.save(str(path))
    if metadata:
        import onnx

        proto = onnx.load(str(path))
        onnx.helper.set_model_props(proto, metadata)
        onnx.save(proto, str(path))


def _write_torchscript(
    model: nn.Module, example: Tensor, path: Path, metadata: dict[str, str]
) -> None:
    with warnings.catch_warnings():
        # torch.jit.trace warns that TorchScript is deprecated (see the module docstring).
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        try:
            traced = torch.jit.trace(model, example, check_trace=False)
        except Exception as error:
            raise CnnzooError(
                f"TorchScript cannot trace {type(model).__name__}: "
                f"{str(error).strip().splitlines()[0]}"
            ) from error
    torch.jit.save(traced, str(path), _extra_files={"cnnzoo.json": json.dumps(metadata)})


def _max_abs_diff(expected: Tensor | list | tuple, actual: Tensor | list | tuple) -> float:
    expected_list, actual_list = _as_list(expected), _as_list(actual)
    if len(expected_list) != len(actual_list):
        raise CnnzooError(
            f"the exported model returns {len(actual_list)} outputs, PyTorch {len(expected_list)}"
        )
    difference = 0.0
    for want, got in zip(expected_list, actual_list):
        if want.shape != got.shape:
            raise CnnzooError(
                f"the exported model's output has shape {tuple(got.shape)}, "
                f"PyTorch's {tuple(want.shape)}"
            )
        difference = max(difference, (want.float() - got.float()).abs().max().item())
    return difference


def _as_list(outputs: Tensor | list | tuple) -> list[Tensor]:
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
