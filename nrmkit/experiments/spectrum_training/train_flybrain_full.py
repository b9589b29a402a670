"""``train_flybrain_full``: train per-neuron gains and shifts of a connectome-constrained network.

The network's weights and signs are the connectome's (default: the shipped FlyWire right
mushroom body; ``--roi`` also takes a FlyStability ROI folder) and stay fixed; the matrix is
sparse. ``--cell_classes KC,MBON,APL`` keeps a sub-network. ``--normalization``:

* ``rows`` (default): every neuron's inputs scaled to unit absolute sum, Σ_j |W_ij| = 1
  (neurons without inputs keep none);
* ``sinkhorn``: Sinkhorn–Knopp on the excitatory and inhibitory parts separately (rows and
  columns of each to ½, as in the original). On the mushroom body no such scaling exists
  (inhibition comes from a few neurons) and the iteration degenerates: see
  :meth:`nrmkit.datasets.connectome.Connectome.normalized`;
* ``none``: synapse counts as they are.

The normalised matrix is multiplied by ``--g``. ``n_samples`` networks share the weights and
differ by their initial conditions (and so by the parameters they learn).
"""

from __future__ import annotations

from dataclasses import dataclass

from nrmkit.core.checks import check, check_finite
from nrmkit.experiments.spectrum_training.settings import TrainingSettings
from nrmkit.experiments.spectrum_training.training import NetworkBatch, TrainOnSpectrum

NORMALIZATIONS = ("rows", "sinkhorn", "none")


@dataclass(frozen=True)
class FlybrainConfig(TrainingSettings):
    """Options of the connectome training workflows (``n`` is taken from the data).

    One trajectory per network by default (``--replicas 1``): an epoch of the whole
    mushroom body costs ``R`` times one trajectory's, and training reaches its target with
    one (docs/spectrum_training.md, "The connectome"); more replicas average the spread
    of the window exponents between trajectories, which is large where the network has
    several attractors.
    """

    replicas: int = 1
    roi: str = "flywire_mb_right"
    cell_classes: str | None = None
    normalization: str = "rows"
    g: float = 1.0

    def __post_init__(self):
        check(self.normalization in NORMALIZATIONS, "--normalization",
              f"choose from {', '.join(NORMALIZATIONS)}")
        check_finite(self.g, "--g")
        check(self.g > 0, "--g", f"must be positive, got {self.g}")
        connectome = load_selected(self.roi, self.cell_classes)
        check(connectome.n >= 2, "--cell_classes" if self.cell_classes else "--roi",
              f"a network needs at least 2 neurons, the selection has {connectome.n}")
        object.__setattr__(self, "n", connectome.n)
        super().__post_init__()


def load_selected(roi: str, cell_classes: str | None):
    """The connectome ``roi``, restricted to ``cell_classes`` (comma-separated) if given.

    Raises:
        ConfigError: naming ``--roi`` (unknown, missing or malformed data) or
            ``--cell_classes`` (a class the connectome does not have).
    """
    from nrmkit.core.errors import ConfigError, DataError
    from nrmkit.datasets.connectome import load_connectome

    try:
        connectome = load_connectome(roi)
    except DataError as error:
        raise ConfigError("--roi", str(error)) from None
    if cell_classes:
        names = [name.strip() for name in cell_classes.split(",") if name.strip()]
        try:
            connectome = connectome.select(names)
        except DataError as error:
            raise ConfigError("--cell_classes", str(error)) from None
    return connectome


def normalized_weight(connectome, normalization: str):
    """The signed scipy CSR matrix after ``normalization`` (see the module docstring)."""
    import numpy as np
    import scipy.sparse as sp

    if normalization == "sinkhorn":
        return connectome.normalized().weight
    weight = connectome.weight.tocsr().astype(np.float64)
    if normalization == "rows":
        sums = np.asarray(abs(weight).sum(axis=1)).ravel()
        scale = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
        weight = sp.diags(scale) @ weight
    return weight.tocsr()


def connectome_batch(config, context, *, populations_by: str | None,
                     n_networks: int | None = None, connectome=None) -> NetworkBatch:
    """``n_networks`` (default ``--n_samples``) copies of the normalised connectome network
    (weights shared, gains 1 and shifts 0 per neuron or population); ``connectome``: the
    already loaded selection (default: load ``--roi`` / ``--cell_classes``)."""
    import numpy as np
    import torch

    from nrmkit.nn.rate_rnn import RateRNN

    dtype, device = context.torch_dtype, context.device
    if connectome is None:
        connectome = load_selected(config.roi, config.cell_classes)
    n_networks = config.n_samples if n_networks is None else n_networks
    weight = normalized_weight(connectome, config.normalization).tocoo()
    indices = torch.as_tensor(np.vstack([weight.row, weight.col]), dtype=torch.long)
    sparse = torch.sparse_coo_tensor(indices, torch.as_tensor(weight.data), weight.shape,
                                     check_invariants=True).to(dtype=dtype, device=device)
    names, population = None, None
    width = connectome.n
    if populations_by is not None:
        index, names = connectome.populations(populations_by)
        population = torch.as_tensor(index, dtype=torch.long)
        width = len(names)
    shape = (1, n_networks, width)
    model = RateRNN(sparse, coupling=torch.full((1, n_networks), config.g, dtype=dtype),
                    gain=torch.ones(shape, dtype=dtype), shift=torch.zeros(shape, dtype=dtype),
                    population=population, activation=config.activation, dt=config.dt)
    selection = f" ({config.cell_classes})" if config.cell_classes else ""
    description = (f"{connectome.name}{selection}, N={connectome.n}, "
                   f"{weight.nnz} connections, {config.normalization}-normalised ×{config.g:g}")
    if names is not None:
        description += f", {len(names)} populations by {populations_by}"
    return NetworkBatch(model=model.to(device), populations=names, description=description)


class TrainFlybrainFull(TrainOnSpectrum):
    name = "train_flybrain_full"
    config_class = FlybrainConfig
    dense_weights = False

    def prepare(self, config, context):
        return load_selected(config.roi, config.cell_classes)

    def build(self, config, context, generators, shared) -> NetworkBatch:
        return connectome_batch(config, context, populations_by=None,
                                n_networks=len(generators), connectome=shared)
