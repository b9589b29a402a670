"""What ``train_glifr`` keeps of a trained trial and what it draws of the run: neuron
parameters and weights, sine read-outs, f–I curves, Ward clustering of the learned
neurons, per-epoch parameter trajectories, and their figures."""

from __future__ import annotations

import json

#: the numbers of clusters scored (published: 2 to 11), capped below the hidden size.
MAX_CLUSTERS = 11


def trial_outputs(config, model, data, record: dict) -> dict:
    """The arrays of one trial (one row each, stacked over trials by the sweep): the JSON
    ``record`` (completed here), and for GLIFR its neuron parameters, weights, f–I curves and
    clustering; for the sine task its read-outs."""
    import numpy as np

    from nrmkit.runs.summaries import summary_statistics

    out = {}
    if config.model == "glifr":
        cell = model.cell
        values = {k: v.detach().cpu().numpy() for k, v in cell.neuron_parameters().items()}
        out.update({f"neuron_{name}": value for name, value in values.items()})
        out["weight_in"] = cell.weight_in.detach().cpu().numpy()
        out["weight_lat"] = cell.weight_lat.detach().cpu().numpy()
        record["neuron_parameters"] = {k: summary_statistics(v) for k, v in values.items()
                                       if v.size}          # no ASC entries with --no-ascs
        fi = fi_curve_arrays(cell)
        out.update(fi)
        clustering = cluster_neurons(values, rates=fi["fi_rates"])
        if clustering is not None:
            record["clustering"] = {key: clustering[key] for key in
                                    ("n_clusters", "calinski_harabasz", "best")}
            out["cluster_labels"] = np.asarray(clustering["best_labels"])
    if config.task == "sine":
        import torch

        with torch.no_grad():
            outputs = model(data["test"][0])
        out.update(sine_outputs=outputs[..., 0].cpu().numpy(),
                   sine_targets=data["test"][1][..., 0].cpu().numpy(),
                   sine_frequencies=np.asarray(data["frequencies"]))
    out["record"] = json.dumps(record)
    return {name: np.asarray(value)[None] for name, value in out.items()}


def fi_curve_arrays(cell) -> dict:
    """f–I curves of the trained neurons with the published protocol (currents
    ``I_0 = −10000 … 9900`` in steps of 100 as the bias current, 100 steps from rest, rate
    averaged over them): ``fi_currents (C,)`` and ``fi_rates (H, C)``."""
    from nrmkit.dynamics.glifr_analysis import PUBLISHED_CURRENTS, fi_curves

    duration = 100 * cell.dt
    rates = fi_curves(cell, PUBLISHED_CURRENTS, duration_ms=duration, window_ms=duration)
    return {"fi_currents": PUBLISHED_CURRENTS, "fi_rates": rates}


def cluster_neurons(values: dict, *, rates=None) -> dict | None:
    """Ward clustering of the neurons' learned parameters (raw, as published) for
    ``k = 2 … min(11, H − 1)``, scored by Calinski–Harabasz; None with fewer than 3 neurons
    or identical neurons (fixed homogeneous parameters: nothing to cluster)."""
    import numpy as np

    from nrmkit.dynamics.glifr_analysis import neuron_features, ward_clustering

    features, _ = neuron_features(values)
    if len(features) < 3 or np.ptp(features, axis=0).max() == 0:
        return None
    result = ward_clustering(features, range(2, min(MAX_CLUSTERS, len(features) - 1) + 1))
    scores = [None if not np.isfinite(score) else float(score) for score in result["scores"]]
    return {"n_clusters": [int(k) for k in result["n_clusters"]],
            "calinski_harabasz": scores, "best": int(result["best"]),
            "best_labels": result["best_labels"]}


def write_outputs(config, run_dir, arrays: dict, label: str) -> None:
    """The run's files and figures from the stacked trial ``arrays`` (figures: trial 0)."""
    from nrmkit import plotting

    names = [name[len("neuron_"):] for name in arrays if name.startswith("neuron_")]
    if names:
        run_dir.write_arrays("neuron_parameters.npz",
                             **{name: arrays[f"neuron_{name}"] for name in names})
        run_dir.write_arrays("weights.npz", weight_in=arrays["weight_in"],
                             weight_lat=arrays["weight_lat"])
        run_dir.save_figure(plotting.glifr_parameters(
            {name: arrays[f"neuron_{name}"][0] for name in names}, title=label,
            dt=config.dt), "neuron_parameters")
        labels = arrays["cluster_labels"][0] if "cluster_labels" in arrays else None
        run_dir.write_arrays("fi_curves.npz", currents=arrays["fi_currents"][0],
                             rates=arrays["fi_rates"],
                             **({} if labels is None else {"cluster_labels":
                                                           arrays["cluster_labels"]}))
        run_dir.save_figure(plotting.fi_curves_figure(
            arrays["fi_currents"][0], arrays["fi_rates"][0], labels=labels, title=label,
            current_label="bias current $I_0$"), "fi_curves")
    if "sine_outputs" in arrays:
        sine = {"outputs": arrays["sine_outputs"][0], "targets": arrays["sine_targets"][0],
                "frequencies": arrays["sine_frequencies"][0]}
        run_dir.write_arrays("sine_outputs.npz", **sine)
        run_dir.save_figure(plotting.sine_outputs(**sine, title=label), "sine_outputs")


def write_clustering_figure(run_dir, trials: list[dict], label: str) -> None:
    """Calinski–Harabasz score against the number of clusters (the first clustered trial)."""
    import numpy as np

    from nrmkit import plotting

    scored = [t["clustering"] for t in trials if "clustering" in t]
    if scored:
        scores = [np.nan if s is None else s for s in scored[0]["calinski_harabasz"]]
        run_dir.save_figure(plotting.cluster_scores_figure(
            scored[0]["n_clusters"], scores, title=label), "clustering")


def write_trajectory_figure(config, run_dir, label: str) -> None:
    """Per-epoch neuron parameters of trial 0 (lhet, rhet), from its trajectory file."""
    import numpy as np

    from nrmkit import plotting

    if run_dir.path is None:
        return
    path = run_dir.path / "parameter_trajectories" / "trial0.npz"
    if not path.is_file():
        return
    with np.load(path) as stored:
        arrays = {name: stored[name] for name in stored.files}
    epochs = arrays.pop("epochs")
    run_dir.save_figure(plotting.parameter_trajectories_figure(
        epochs, arrays, dt=config.dt, title=label), "parameter_trajectories")
