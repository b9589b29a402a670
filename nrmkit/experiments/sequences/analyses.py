"""The analyses of a trained sequence model: robustness transforms, learned shape
parameters, Lyapunov exponents and fractional orders, each with its arrays and figure."""

from __future__ import annotations

from typing import Any

from nrmkit.core.errors import ConfigError
from nrmkit.runs.summaries import summary_statistics


def describe_run(model: dict, data: dict) -> str:
    """``RNN-gamma2, 64 units, permuted digits (rows, 8 steps)`` from the results' records."""
    net = model["net_type"] + (f"-{model['nonlin']}" if model["net_type"] == "RNN" else "")
    permuted = "permuted " if data["permute"] else ""
    return (f"{net}, {model['hidden_size']} units, {permuted}{data['dataset']} "
            f"({data['input']}, {data['steps']} steps)")


def augmentation(kind: str, data, n_steps: int):
    """The training transform ``(inputs, generator) -> (inputs, drive)``."""
    import torch

    if kind == "step":
        def step(inputs, generator):
            drive = torch.as_tensor(data.step_drive(n_steps, size=data.STEP_SIZE),
                                    dtype=inputs.dtype, device=inputs.device)
            return inputs, drive.reshape(-1, 1, 1)
        return step

    def sine(inputs, generator):
        frequency = data.TRAIN_SINE_MAX_FREQUENCY * torch.rand(inputs.shape[1],
                                                                generator=generator)
        transformed = data.sine_gain(inputs.cpu().numpy(), amplitude=data.TRAIN_SINE_AMPLITUDE,
                                     frequency=frequency.numpy())
        return torch.as_tensor(transformed, dtype=inputs.dtype, device=inputs.device), None
    return sine


def shape_arrays(model) -> dict[str, Any]:
    return {name: value.detach().cpu().numpy().copy()
            for name, value in model.cell.shape_parameters().items()}


def shape_analysis(model, test, initial, run_dir, title) -> dict | None:
    """Learned (n, s) per neuron (ANRU: time-averaged signals on test digits) + figures."""
    import numpy as np
    import torch

    from nrmkit import plotting

    if model.spec.net_type == "ANRU":
        with torch.no_grad():
            inputs = test[0][:, :100]
            _, trace = model.run(inputs, record=True)
        n_t, s_t = trace["n"].cpu().numpy(), trace["s"].cpu().numpy()    # (T, B, H)
        n, s = n_t.mean((0, 1)), s_t.mean((0, 1))
        neurons = list(range(min(5, n.size)))
        run_dir.write_arrays("shape_parameters.npz", n=n, s=s, n_t=n_t[:, 0], s_t=s_t[:, 0])
        run_dir.save_figure(plotting.adaptation_traces(
            inputs[:, 0].cpu().numpy(), n_t[:, 0, neurons], s_t[:, 0, neurons], neurons,
            title=f"{title}: shape signals on one test digit"), "adaptation")
        label, initial_n = "time-averaged", None
    else:
        learned = shape_arrays(model)
        if not learned:
            return None
        n, s = learned["n"], learned["s"]
        initial_n = initial.get("n")
        run_dir.write_arrays("shape_parameters.npz", n=n, s=s, initial_n=initial_n,
                             initial_s=initial.get("s"))
        label = "learned"
    run_dir.save_figure(plotting.shape_parameters(n, s, title=title, initial_n=initial_n,
                                                  label=label), "shape_parameters")
    return {"n": summary_statistics(n), "s": summary_statistics(s),
            "per_neuron": bool(np.size(n) > 1), "kind": label}


def lyapunov_analysis(config, model, test, context, title) -> dict:
    from nrmkit import plotting
    from nrmkit.dynamics.sequence_analysis import trained_lyapunov
    from nrmkit.nn.recurrent import RecurrentDynamics

    state_dim = RecurrentDynamics(model.cell, 1).state_dim
    if config.lyapunov > state_dim:
        raise ConfigError("--lyapunov", f"the network's state has {state_dim} dimensions, "
                          f"fewer than the {config.lyapunov} exponents asked for")
    context.log(f"smnist: top {config.lyapunov} Lyapunov exponents (autonomous and driven)")
    autonomous = trained_lyapunov(model.cell, config.lyapunov,
                                  n_trajectories=config.lyapunov_samples,
                                  steps=config.lyapunov_steps,
                                  generator=context.stream("autonomous lyapunov"))
    driven = trained_lyapunov(model.cell, config.lyapunov,
                              inputs=test[0][:, :config.lyapunov_samples],
                              generator=context.stream("driven lyapunov"))
    for name, result in (("autonomous", autonomous), ("driven", driven)):
        if result.n_diverged:
            context.log(f"smnist: {result.n_diverged} of {result.exponents.shape[0]} {name} "
                        "trajectories grow without bound (no finite exponents; reported "
                        "as null)")
    context.run_dir.write_arrays("lyapunov.npz", autonomous=autonomous.exponents,
                                 driven=driven.exponents)
    context.run_dir.save_figure(plotting.sequence_lyapunov(
        {"autonomous (zero input)": (autonomous.mean, autonomous.std),
         "driven by test digits": (driven.mean, driven.std)}, title=title), "lyapunov")
    return {"autonomous": autonomous.summary(), "driven": driven.summary()}


def fractional_analysis(model, input_size, context, title) -> dict:
    import numpy as np

    from nrmkit import plotting
    from nrmkit.dynamics.sequence_analysis import response_fractional_order

    order = response_fractional_order(model, input_size=input_size,
                                      generator=context.stream("fractional order"),
                                      dtype=context.torch_dtype, device=context.device)
    context.run_dir.write_arrays("fractional_order.npz", alpha_hat=order.alpha_hat,
                                 alphas=order.alphas, error=order.error)
    context.run_dir.save_figure(plotting.fractional_orders(
        order.alpha_hat, order.alphas, order.error, title=title), "fractional_order")
    quartiles = np.percentile(order.alpha_hat, [25, 50, 75])
    return {"alpha_hat_median": float(quartiles[1]),
            "alpha_hat_mean": float(np.mean(order.alpha_hat)),
            "alpha_hat_quartiles": [float(quartiles[0]), float(quartiles[2])],
            "alphas": [float(order.alphas[0]), float(order.alphas[-1]), len(order.alphas)]}
