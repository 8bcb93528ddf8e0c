"""Library figures leave the user's plotting backend and pyplot alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Draws one figure of each kind the library makes in a fresh interpreter whose backend is
# set to "svg" beforehand, as a notebook or an application would have chosen its own.
_SCRIPT = """
import sys
from pathlib import Path

import matplotlib
matplotlib.rcParams["backend"] = "svg"

import torch
import cnnzoo
from cnnzoo.analysis.comparison import ModelSummary, plot_comparison
from cnnzoo.analysis.feature_maps import save_feature_grid
from cnnzoo.analysis.se_weights import save_se_weights
from cnnzoo.runs.plots import plot_confusion, plot_curves
from cnnzoo.experiments.base import ExperimentRun
from cnnzoo.measure.load import MachineLoad

out = Path(sys.argv[1])
history = [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.1, "train_top1": 0.5, "val_top1": 0.4}]
plot_curves(history, out / "curves.png", "top1")
plot_confusion(torch.eye(3, dtype=torch.long), ["a", "b", "c"], out / "confusion.png", "t")
save_feature_grid(torch.rand(4, 5, 5), out / "maps.png", "maps")
save_se_weights(torch.rand(8), out / "se.png", "se")
rows = [
    ModelSummary(name, name, (1, 8, 8), params, 2 * params, 1.0 + params, None, None,
                 load=MachineLoad(4.0, 4.0, 2))
    for name, params in (("a", 10), ("b", 200))
]
plot_comparison(rows, out / "comparison.png")
run = ExperimentRun(out_dir=out, quick=True)
from matplotlib.figure import Figure
figure = Figure(figsize=(2, 2))
figure.subplots().plot([0, 1])
run.save_figure(figure, "experiment.png", "a line")
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""


def test_drawing_keeps_the_backend_and_never_imports_pyplot(tmp_path: Path) -> None:
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    environment.pop("MPLBACKEND", None)
    finished = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.split() == ["svg", "False"]
    for name in ("curves", "confusion", "maps", "se", "comparison", "experiment"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000, name
