"""The survey's claims as runnable experiments; importing this registers them."""

from cnnzoo.experiments import small_kernels  # noqa: F401, I001  (survey order)
from cnnzoo.experiments import inception_reduction  # noqa: F401, I001  (survey order)
from cnnzoo.experiments import degradation  # noqa: F401
from cnnzoo.experiments import vanishing_gradients  # noqa: F401
from cnnzoo.experiments import fcn_skips  # noqa: F401
from cnnzoo.experiments import segnet_unet_fcn  # noqa: F401
from cnnzoo.experiments import dilation  # noqa: F401
from cnnzoo.experiments import se_attention  # noqa: F401
from cnnzoo.experiments import efficient_nets  # noqa: F401
from cnnzoo.experiments import dense_reuse  # noqa: F401
from cnnzoo.experiments import transfer  # noqa: F401
from cnnzoo.experiments.base import (
    ExperimentData,
    ExperimentRun,
    get_experiment,
    list_experiments,
    register_experiment,
    run_experiment,
)

__all__ = [
    "ExperimentData",
    "ExperimentRun",
    "get_experiment",
    "list_experiments",
    "register_experiment",
    "run_experiment",
]
