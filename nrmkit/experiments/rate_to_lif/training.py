"""Training the Dale rate network of ``rate_to_lif`` (modes ``train`` and ``all``): the
network (:mod:`nrmkit.nn.dale`) trained with the published stopping rule
(:mod:`nrmkit.training.rate_task`), its evaluation, ``training.npz``, ``rate_outputs.npz`` and
the figures ``training`` and ``rate_outputs``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from nrmkit.runs.summaries import summary_statistics

if TYPE_CHECKING:
    from nrmkit.experiments.rate_to_lif.rate_to_lif import RateToLifConfig

#: the training checkpoint, relative to the run folder (resumed by ``--resume``).
TRAINING_CHECKPOINT = "checkpoints/training.pt"


def train_rate_network(config: RateToLifConfig, context, task, results: dict):
    """Train a rate network of ``config`` on ``task`` until the stopping rule holds or
    ``--n_trials`` updates are spent, evaluate it on ``EVAL_TRIALS`` trials and write the
    training record; adds the training keys to ``results``.

    Streams: ``initialisation``, ``training trials``, ``evaluation trials``,
    ``evaluation noise``.

    Returns:
        ``(network, losses, record)``: the trained :class:`~nrmkit.nn.dale.DaleRateRNN` (on
        the context's device and dtype, in eval mode), the loss of every update and the
        published ``.mat`` fields of the untrained network and of example trials
        (:func:`mat_record`).

    Raises:
        DivergenceError: when the last loss is not finite.
    """
    import numpy as np

    from nrmkit.nn.dale import DaleRateRNN, DaleSpec
    from nrmkit.runs.checkpoints import EpochCheckpoint
    from nrmkit.training.rate_task import EVAL_TRIALS, RateTaskTrainer, evaluate_rate

    spec = DaleSpec(n=config.n, n_inputs=task.n_inputs, p_inh=config.p_inh,
                    p_rec=config.p_rec, gain=config.gain, som_n=config.som_n,
                    apply_dale=config.apply_dale, taus=config.decay_taus,
                    activation=config.act)
    network = DaleRateRNN(spec, generator=context.stream("initialisation"))
    record = initial_record(network, task, context)
    network = network.to(device=context.device, dtype=context.torch_dtype)
    trainer = RateTaskTrainer(network, task, n_trials=config.n_trials, batch=config.batch,
                              lr=config.lr, loss=config.loss_fn,
                              generator=context.stream("training trials"))
    run_dir = context.run_dir
    checkpoint = EpochCheckpoint(
        None if run_dir.path is None else run_dir.path / TRAINING_CHECKPOINT, trainer)
    if checkpoint.restore() is not None:
        context.log(f"rate_to_lif: resuming after {trainer.updates} updates")
    context.log(f"rate_to_lif: training a {spec.n}-unit {spec.activation} Dale network on "
                f"{task.name} (batch {config.batch}, at most {config.n_trials} updates)")
    progress = context.progress("training")
    started = time.perf_counter()

    trainer.fit_until_rule(on_epoch_end=(
        checkpoint, lambda epoch, metrics: progress(trainer.updates, config.n_trials)))
    seconds = time.perf_counter() - started
    if not np.isfinite(trainer.losses[-1] if trainer.losses else 0.0):
        from nrmkit.core.errors import DivergenceError

        raise DivergenceError("rate training diverged (non-finite loss); lower --lr or --gain")
    network.eval()
    trials = task.trials(EVAL_TRIALS, context.stream("evaluation trials"))
    evaluation = evaluate_rate(network, task, trials, loss=config.loss_fn,
                               generator=context.stream("evaluation noise"))
    results.update({
        "rate_accuracy": evaluation["accuracy"], "rate_loss": evaluation["loss"],
        "trials_used": trainer.trials_used, "updates": trainer.updates,
        "stopping_rule_met": trainer.stopping_rule_met,
        "training_seconds": round(seconds, 2),
        "dale_violations": network.dale_violations(),
        "taus_ms": summary_statistics(network.taus_ms()),
    })
    context.log(f"  {trainer.updates} updates ({trainer.trials_used} trials, {seconds:.1f} s): "
                f"accuracy {100 * evaluation['accuracy']:.1f} %, loss {evaluation['loss']:.2f}, "
                f"stopping rule {'met' if trainer.stopping_rule_met else 'not met'}")
    _write_training(context, task, network, trainer, evaluation)
    record.update(mat_record(network, task, context, trials, evaluation))
    return network, list(trainer.losses), record


def initial_record(network, task, context) -> dict:
    """The untrained network in the published ``.mat`` fields: ``w0``, ``taus_gaus0``,
    ``w_in0`` and its states ``x0``, ``r0`` ``(T+1, N)`` on one trial (streams
    ``initial trial``, ``initial trial noise``)."""
    from nrmkit.nn.dale import initial_mat_fields

    trial = task.trials(1, context.stream("initial trial"))
    states, rates, _ = network.trajectory(trial.inputs.to(network.w.dtype),
                                          generator=context.stream("initial trial noise"))
    return {**initial_mat_fields(network), "x0": states[:, 0].double().numpy(),
            "r0": rates[:, 0].double().numpy()}


def mat_record(network, task, context, trials, evaluation: dict) -> dict:
    """The trained network in the published ``.mat`` fields: one example trial (streams
    ``example trial``, ``example trial noise``: ``u (I, T)``, ``target (T,)``, states ``x``
    and rates ``r (T+1, N)``, read-out ``o (T,)``) and the evaluation's read-outs
    ``eval_os (n, T)`` and ``eval_labels`` (XOR: ``same``/``diff``, as published)."""
    import numpy as np

    trial = task.trials(1, context.stream("example trial"))
    inputs = trial.inputs.to(device=context.device, dtype=context.torch_dtype)
    states, rates, outputs = network.trajectory(
        inputs, generator=context.stream("example trial noise"))
    labels = trials.labels.numpy()
    if task.name == "xor":
        labels = np.where(labels > 0, "same", "diff")
    return {"u": trial.inputs[:, 0, :].t().double().numpy(),
            "target": trial.targets[:, 0].double().numpy(),
            "x": states[:, 0].double().cpu().numpy(), "r": rates[:, 0].double().cpu().numpy(),
            "o": outputs[:, 0].double().cpu().numpy(),
            "eval_os": evaluation["outputs"].detach().t().double().cpu().numpy(),
            "eval_labels": labels}


def _write_training(context, task, network, trainer, evaluation: dict) -> None:
    """``training.npz`` (the loss of every update; updates, train and eval loss, eval accuracy
    of every evaluation), ``rate_outputs.npz`` (the read-outs ``(T, EVAL_TRIALS)`` of the
    evaluation, its targets, conditions and labels) and the figures ``training`` and
    ``rate_outputs``."""
    import numpy as np

    from nrmkit import plotting
    from nrmkit.training.rate_task import EVAL_TRIALS

    run_dir = context.run_dir
    spec = network.spec
    history = trainer.history
    arrays = {key: np.array([entry[key] for entry in history], dtype=float)
              for key in ("updates", "train_loss", "eval_loss", "eval_accuracy")}
    run_dir.write_arrays("training.npz", losses=np.asarray(trainer.losses), **arrays)
    title = f"{task.name}, N = {spec.n}, {spec.activation}"
    run_dir.save_figure(plotting.rate_training_curve(
        arrays["updates"], arrays["eval_loss"], arrays["eval_accuracy"], title=title),
        "training")
    trials = task.trials(EVAL_TRIALS, context.stream("evaluation trials"))
    outputs = evaluation["outputs"].detach().cpu().numpy()
    run_dir.write_arrays("rate_outputs.npz", outputs=outputs,
                         targets=trials.targets.numpy(), conditions=trials.conditions.numpy(),
                         labels=trials.labels.numpy())
    run_dir.save_figure(plotting.rate_task_outputs(
        outputs, trials.targets.numpy(), trials.conditions.numpy(), trials.condition_names,
        title=f"rate network: {title}"), "rate_outputs")
