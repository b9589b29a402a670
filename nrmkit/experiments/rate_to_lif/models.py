"""The rate networks of ``rate_to_lif`` on disk: ``--model`` read from a ``.mat`` of the
published code, a ``model.pt`` or a run folder of this workflow (:func:`load_model`), and a
trained network written as ``model.pt`` and the published ``.mat`` (:func:`write_models`)."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import TYPE_CHECKING

from nrmkit.core.errors import ConfigError, DataError

if TYPE_CHECKING:
    from nrmkit.experiments.rate_to_lif.rate_to_lif import RateToLifConfig


def load_model(config: RateToLifConfig, task):
    """The network of ``--model`` and its stored best λ (or None).

    Raises:
        ConfigError: naming ``--model`` when its file cannot be read, is not a rate model,
            lacks fields or holds non-finite weights (one line naming the file); naming
            ``--task`` when the model was trained on another task.
    """
    import json

    path = Path(config.model)
    stored_lambda = None
    if path.is_dir():
        if (path / "results.json").exists():
            try:
                stored_lambda = json.loads((path / "results.json").read_text()).get(
                    "best_lambda")
            except (OSError, ValueError):
                stored_lambda = None
        path = path / "model.pt"
        if not path.exists():
            raise ConfigError("--model", f"no model.pt in {config.model}")
    try:
        network, record = read_model(path)
    except DataError as error:
        raise ConfigError("--model", str(error)) from None
    stored_task = record.get("task")
    if path.suffix == ".mat":
        if "opt_scaling_factor" in record:
            value = float(record["opt_scaling_factor"].squeeze())
            stored_lambda = value if value == value else None
    else:
        stored_lambda = record.get("best_lambda") or stored_lambda
    if getattr(config, "use_initial_weights", False):
        network = with_initial_weights(network, record, path)
    if stored_task and str(stored_task) != task.name:
        raise ConfigError("--task", f"the model was trained on {stored_task}, not {task.name}")
    if network.spec.n_inputs != task.n_inputs:
        raise ConfigError("--task", f"the model has {network.spec.n_inputs} input channel(s); "
                                    f"{task.name} needs {task.n_inputs}")
    return network, stored_lambda


def read_model(path: Path):
    """``(network, record)`` from a published-layout ``.mat`` (record: its fields) or a
    ``model.pt`` of this workflow; every failure is a :class:`DataError` naming the file."""
    from nrmkit.datasets.matfile import NETWORK_FIELDS, read_rate_model_mat
    from nrmkit.nn.dale import network_from_mat_fields
    from nrmkit.training.checkpoint import load_dale_network, require_finite

    if path.suffix == ".mat":
        fields = read_rate_model_mat(path)
        require_finite({name: fields[name] for name in NETWORK_FIELDS if name in fields},
                       path)
        try:
            network, record = network_from_mat_fields(fields, noise_std=0.1), fields
        except KeyError:
            raise DataError(f"{path}: unknown activation {fields.get('activation')!r}") \
                from None
    else:
        network, record = load_dale_network(path)
    taus = network.spec.taus
    # the bounds --decay_taus enforces: a decay under one step makes the Euler update and
    # the LIF synapses meaningless
    if not (1.0 <= taus[0] <= taus[-1] < float("inf")):
        raise DataError(f"{path}: taus must be [τ_min, τ_max] or [τ] in 5-ms steps with "
                        f"1 ≤ τ_min ≤ τ_max < ∞, got {list(taus)}")
    return network, record


def prepared(network, context):
    """``network`` on the context's device and dtype, without gradients."""
    network = network.to(device=context.device, dtype=context.torch_dtype)
    network.requires_grad_(False)
    return network


def write_models(context, task, network, results: dict, losses: list, record: dict) -> None:
    """``model.pt`` (with the initial ``w0``, ``taus_gaus0``) and the published ``.mat`` in
    the published folder (:func:`~nrmkit.datasets.matfile.model_folder`), holding the
    published fields, ``record`` (:mod:`~nrmkit.experiments.rate_to_lif.training`) and, in
    mode all, the grid's results under the published names ``opt_scaling_factor``,
    ``scaling_factors``, ``all_perfs``; adds ``mat_file`` (its path in the run folder) to
    ``results``."""
    import numpy as np
    import torch

    from nrmkit.datasets.matfile import mat_file_name, model_folder, write_rate_model_mat
    from nrmkit.nn.dale import mat_fields
    from nrmkit.training.checkpoint import save_dale_network

    path = context.run_dir.path
    spec = network.spec
    extras = {"task": task.name, "eval_perf_mean": results.get("rate_accuracy", float("nan")),
              "eval_loss_mean": results.get("rate_loss", float("nan")),
              "tr": max(results.get("updates", 1) - 1, 0)}
    if "best_lambda" in results:
        lambdas = [float(v) for v in results["lif_accuracy"]]
        extras.update({"opt_scaling_factor": results["best_lambda"],
                       "scaling_factors": np.asarray(lambdas),
                       "all_perfs": np.asarray([results["lif_accuracy"][str(v)]
                                                for v in results["lif_accuracy"]])})
    name = (model_folder(task.name, spec.p_rec, spec.taus, apply_dale=spec.apply_dale)
            / mat_file_name(task.name, spec.n, spec.taus, spec.activation, _dt.datetime.now()))
    network = network.cpu()
    write_rate_model_mat(path / name, {**mat_fields(network), **record, **extras,
                                       "losses": np.asarray(losses)})
    initial = {key: torch.as_tensor(record[key]) for key in INITIAL_FIELDS}
    save_dale_network(path / "model.pt", network, {"task": task.name,
                                              "best_lambda": results.get("best_lambda"),
                                              "initial": initial})
    network.to(device=context.device)
    context.run_dir.written.extend([path / name, path / "model.pt"])
    results["mat_file"] = name.as_posix()


#: the untrained network's fields kept in ``model.pt`` (as in the ``.mat``).
INITIAL_FIELDS = ("w0", "taus_gaus0")


def with_initial_weights(network, record: dict, path: Path):
    """``network`` with its recurrent weights replaced by the untrained ``w0`` of
    ``record`` (a ``.mat``'s fields, or a ``model.pt`` record with ``initial``); τ, ``W_in``
    and the read-out stay trained, as in the published ``LIF_network_fnc``.

    Raises:
        ConfigError: naming ``--use_initial_weights`` when the file holds no ``w0``.
    """
    import numpy as np
    import torch

    w0 = record.get("w0", (record.get("initial") or {}).get("w0"))
    if w0 is None:
        raise ConfigError("--use_initial_weights",
                          f"{path} holds no initial weights w0 (written before they were "
                          "saved, or by a tool that does not save them)")
    w0 = np.asarray(w0, dtype=np.float64)
    n = network.spec.n
    if w0.shape != (n, n) or not np.isfinite(w0).all():
        raise ConfigError("--use_initial_weights", f"{path}: w0 must be a finite ({n}, {n}) "
                                                   f"matrix, got shape {w0.shape}")
    with torch.no_grad():
        network.w.copy_(torch.as_tensor(w0))
    return network
