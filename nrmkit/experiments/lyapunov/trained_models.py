"""Options and configuration shared by the Lyapunov workflows (no torch import here)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nrmkit.core.base import MemoryTerm
from nrmkit.core.checks import check
from nrmkit.core.errors import ConfigError
from nrmkit.experiments.lyapunov.settings import (
    LOG_ITEMSIZE,
    RESULT_BYTES_PER_VALUE,
    engine_memory,
    memory_term,
    naming_divergence,
    plural,
    raised,
    weight_memory,
)

#: the workflows whose run folders hold trained rate networks: ``model.pt`` (after training)
#: and ``model_initial.pt`` (the same networks before it).
TRAINED_MODEL_WORKFLOWS = ("train_rd_model", "train_rd_model_fixed_param",
                           "train_flybrain_full", "train_flybrain_pop")


#: the file ``--model RUN_DIR`` analyses, by ``--untrained``.
MODEL_FILES = {False: "model.pt", True: "model_initial.pt"}


#: what ``--model`` and ``--untrained`` say in messages.
MODEL_FILE_OPTIONS = {False: "--model", True: "--untrained"}


#: peak bytes of loading a model file, per byte of the file: the tensors read, the copy
#: :class:`~nrmkit.nn.rate_rnn.RateRNN` makes, and a cast to the run's dtype (float32 →
#: float64 doubles it).
MODEL_LOAD_BYTES_PER_FILE_BYTE = 4


#: the options that describe random networks, refused together with ``--model`` (the
#: analysed networks have their own N, dt, activation and couplings).
RANDOM_NETWORK_OPTIONS = ("n", "dt", "activation", "g", "n_samples", "variance_max",
                          "parameter", "independent_draws")


@dataclass(frozen=True)
class TrainedModelInfo:
    """What :func:`trained_model_info` learns about the model file of a training run.

    Attributes:
        path: the model file (``RUN/model.pt`` or ``RUN/model_initial.pt``), resolved.
        run: the training run's folder; ``workflow``: the workflow that made it.
        trained: False for ``model_initial.pt`` (the networks before training).
        n, dt, activation: the networks' size, Euler step [τ] and activation.
        batch_shape: ``(S, G)`` of the saved :class:`~nrmkit.nn.rate_rnn.RateRNN`; its
            ``S·G`` networks are numbered in row-major order (= the training samples).
        sparse: whether the networks share one sparse matrix (a connectome).
        file_bytes: size of the file; ``sha256``: its digest (a changed model is another run).
    """

    path: str
    run: str
    workflow: str
    trained: bool
    n: int
    dt: float
    activation: str
    batch_shape: tuple[int, int]
    sparse: bool
    file_bytes: int
    sha256: str

    @property
    def networks(self) -> int:
        return self.batch_shape[0] * self.batch_shape[1]

    def record(self) -> dict[str, Any]:
        """The ``model`` entry of ``results.json``."""
        return {"path": self.path, "run": self.run, "workflow": self.workflow,
                "trained": self.trained, "file": Path(self.path).name, "sha256": self.sha256,
                "networks": self.networks, "sparse": self.sparse}


def trained_model_info(model: str, untrained: bool = False) -> TrainedModelInfo:
    """Check that ``model`` is the folder of a finished training run and read its model file
    (``model_initial.pt`` when ``untrained``), loading it once to validate it.

    Cached per file state (path, size, modification time) within a process.

    Raises:
        ConfigError: naming ``--model`` (``--untrained`` for a missing ``model_initial.pt``),
            one line: a missing path, a file instead of a folder, a folder that is no nrmkit
            run, a run of another workflow, no model file (an unfinished run), a corrupt or
            foreign model file.
    """
    from nrmkit.core.errors import DataError
    from nrmkit.core.files import MARKER_DIR
    from nrmkit.runs.rundir import MARKER_FILE, read_marker

    folder = Path(model).expanduser()
    check(str(model).strip() != "", "--model", "is empty: give the folder of a training run")
    check(folder.exists(), "--model", f"{folder} does not exist")
    check(folder.is_dir(), "--model", f"{folder} is not a folder: give the run folder of a "
                                      f"training run (the folder that holds {MODEL_FILES[False]})")
    try:
        marker = read_marker(folder)
    except DataError as error:
        raise ConfigError("--model", str(error)) from None
    check(marker is not None, "--model",
          f"{folder} is not an nrmkit run folder (no {MARKER_DIR}/{MARKER_FILE}); give the "
          "--output-dir of a training run")
    check(marker["workflow"] in TRAINED_MODEL_WORKFLOWS, "--model",
          f"{folder} holds a {marker['workflow']} run, not a training run "
          f"({', '.join(TRAINED_MODEL_WORKFLOWS)})")
    path = (folder / MODEL_FILES[untrained]).resolve()
    check(path.is_file(), MODEL_FILE_OPTIONS[untrained],
          f"{folder} has no {path.name} (the training run has not finished: resume it)"
          if not untrained else f"{folder} has no {path.name} (the networks before training "
                                "are saved by this version's training workflows)")
    stat = path.stat()
    return _model_info(str(path), stat.st_size, stat.st_mtime_ns, marker["workflow"],
                       untrained)


@functools.lru_cache(maxsize=8)
def _model_info(path: str, size: int, mtime_ns: int, workflow: str,
                untrained: bool) -> TrainedModelInfo:
    from nrmkit.core.errors import DataError
    from nrmkit.training.checkpoint import load_trained_model

    try:
        loaded = load_trained_model(path)
    except DataError as error:
        raise ConfigError("--model", str(error)) from None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return TrainedModelInfo(
        path=path, run=str(Path(path).parent), workflow=workflow, trained=not untrained,
        n=loaded.n_neurons, dt=loaded.dt, activation=loaded.activation.name,
        batch_shape=tuple(int(size) for size in loaded.batch_shape), sparse=loaded.sparse,
        file_bytes=size, sha256=digest.hexdigest())


def adopt_trained_model(config: Any) -> TrainedModelInfo | None:
    """For a config with ``model`` set: fill ``n``, ``dt``, ``activation``, ``n_samples``
    (= the model's networks), ``model`` (resolved) and ``model_sha256`` from the model file
    (:func:`trained_model_info`); a default ``nle`` above the model's N becomes N. None when
    no model is given. Call it first in ``__post_init__``: the Lyapunov settings are then
    validated against the model's N."""
    if config.model is None:
        check(not config.untrained, "--untrained",
              "analyses the networks of a training run before training: give the run "
              "with --model")
        return None
    info = trained_model_info(config.model, config.untrained)
    for name, value in (("model", info.run), ("model_sha256", info.sha256), ("n", info.n),
                        ("dt", info.dt), ("activation", info.activation),
                        ("n_samples", info.networks)):
        object.__setattr__(config, name, value)
    default_nle = {field.name: field.default for field in dataclasses.fields(config)}["nle"]
    if default_nle is not None and config.nle == default_nle:   # a default above N: all N
        object.__setattr__(config, "nle", min(default_nle, info.n))
    nle = info.n if config.nle is None else config.nle
    check(1 <= nle <= info.n, "--nle",
          f"must lie in [1, {info.n}] (N of the networks of --model), got {nle}")
    return info


def network_of(model: Any, index: int) -> Any:
    """Network ``index`` (row-major over the batch ``(S, G)``) of a
    :class:`~nrmkit.nn.rate_rnn.RateRNN`, as a model of batch ``(1, 1)`` with its own copy of
    the weights (a sparse matrix is shared by every network)."""
    from nrmkit.nn.rate_rnn import RateRNN

    s, g = divmod(int(index), model.batch_shape[1])
    weight = model.weight.detach() if model.sparse else model.weight.detach()[s]
    return RateRNN(weight, coupling=model.coupling[s, g].reshape(1, 1),
                   gain=model.gain.detach()[s, g].reshape(1, 1, -1),
                   shift=model.shift.detach()[s, g].reshape(1, 1, -1),
                   population=model.population, activation=model.activation, dt=model.dt,
                   initial_std=model.initial_std, self_connections=model.self_connections)


def load_analysed_model(config: Any, context: Any) -> Any:
    """The model of ``config.model`` in the run's dtype and device (checked to be the file
    the configuration was made from)."""
    from nrmkit.core.errors import DataError
    from nrmkit.training.checkpoint import load_trained_model

    info = trained_model_info(config.model, config.untrained)
    if info.sha256 != config.model_sha256:
        raise DataError(f"{info.path} changed since the run started (another model); start "
                        "a new run")
    model = load_trained_model(info.path, device=context.device)
    return model.to(dtype=context.torch_dtype)


def trained_memory_terms(config: Any, *, networks: int, itemsize: int,
                         history_copies: float = 2.0) -> list[MemoryTerm]:
    """Memory of analysing ``networks`` networks of ``config.model`` in one engine call
    (``k = nle``, ``n_ons = tsim / t_ONS``, one step for ``auto``; bytes):

    * the loaded model ``4 × file size`` (:data:`MODEL_LOAD_BYTES_PER_FILE_BYTE`) and the
      copy of the analysed networks' weights (``networks · N² · (8 + itemsize)`` dense, the
      file size again for a shared sparse matrix);
    * engine ``7 · B·(k+1)·N · itemsize + B·k² · itemsize`` (:func:`engine_memory`);
    * history ``history_copies · n_ons · B · k · 8``;
    * results ``128 · n_networks · k``.
    """
    info = trained_model_info(config.model, config.untrained)
    n, k = info.n, config.nle
    working, _ = engine_memory(networks=networks, n=n, nle=k, n_ons=config.n_ons,
                               itemsize=itemsize)
    history = history_copies * config.n_ons * networks * k * LOG_ITEMSIZE
    copy = info.file_bytes if info.sparse else weight_memory(n, networks, itemsize)
    tsim = {"--tsim": raised(config, "--tsim"), "--tons": raised(config, "--tons", -1)}
    return [
        MemoryTerm("--model", MODEL_LOAD_BYTES_PER_FILE_BYTE * info.file_bytes + copy,
                   f"the {plural(info.networks, 'network')} of {n} neurons in {info.path}"),
        MemoryTerm("--nle" if k > 1 else "--model", working,
                   f"the states and {plural(k, 'tangent vector')} of "
                   f"{plural(networks, 'network')} of {n} neurons"),
        memory_term({**tsim, "--nle": k}, history,
                    f"the float64 logs of {plural(config.n_ons, 're-orthonormalisation')} of "
                    f"{plural(k, 'exponent')} of {plural(networks, 'network')}"),
        MemoryTerm("--nle" if k > 1 else "--model",
                   RESULT_BYTES_PER_VALUE * info.networks * k,
                   f"the {info.networks}×{k} exponents of the analysis"),
    ]


#: the stream of the initial states and tangent bases of analysed networks (per network).
STATES_STREAM = "analysed states"


def iter_trained_networks(name: str, config: Any, context: Any, units: list[int]):
    """Exponents of the networks ``units`` of ``config.model``, one network per engine call.

    Network ``i`` draws its initial state and tangent basis from its own stream
    ``(seed, i, STATES_STREAM)``: its numbers do not depend on the chunk, and the trained
    and untrained networks start from the same state and basis. Yields ``(i, arrays)`` with
    ``exponents``, ``stderr`` ``(1, nle)`` (descending) and ``tons``, ``t_accumulated``
    ``(1,)``.
    """
    import numpy as np

    from nrmkit.dynamics import lyapunov_spectrum
    from nrmkit.dynamics.lyapunov import random_basis

    model = load_analysed_model(config, context)
    which = "initial" if config.untrained else "trained"
    context.log(f"{name}: {len(units)} of {plural(config.n_samples, f'{which} network')} of "
                f"{config.model}, N={config.n}, nle={config.nle}, t_ONS {config.tons}, on "
                f"{context.device} ({context.dtype})")
    progress = context.progress("lyapunov")
    for position, unit in enumerate(units):
        network = network_of(model, unit)
        generator = context.stream(STATES_STREAM, unit=unit)
        state = network.initial_state(generator)
        basis = random_basis(network.batch_shape, config.nle, config.n, generator=generator,
                             dtype=context.torch_dtype, device=context.device)

        def report(done: int, total: int, position: int = position) -> None:
            progress(position * total + done, len(units) * total)

        with naming_divergence(lambda index, unit=unit: f"network {unit}",
                               every=[(0, 0)]):
            result = lyapunov_spectrum(network, config.nle, state=state, basis=basis,
                                       progress=report, **config.engine_kwargs()).sorted()
        yield unit, {
            "exponents": result.exponents.detach().cpu().numpy().reshape(1, config.nle),
            "stderr": result.standard_error.detach().cpu().numpy().reshape(1, config.nle),
            "tons": np.array([result.tons]), "t_accumulated": np.array([result.t_accumulated])}
