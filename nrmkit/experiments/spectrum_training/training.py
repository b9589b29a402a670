"""What the four spectrum-training workflows share: options, the training loop, outputs.

A training workflow builds random or connectome-constrained networks (see the workflow
modules); :class:`TrainOnSpectrum` trains each of the ``--n_samples`` networks — the
*units* of the sweep, spread over processes or SLURM array jobs with ``--executor`` — by
:class:`~nrmkit.training.spectrum.SpectrumTrainer`: Adam on the loss of its top ``nle``
exponents. Network ``s`` draws its matrix, masks, initial state and tangent basis from its
own stream ``(seed, s, "network")`` (:mod:`nrmkit.core.streams`) and trains alone — or with
the other networks of its batch of ``--samples_per_batch`` consecutive samples, a fixed
group that chunks keep whole — so its numbers do not depend on the executor or chunking.
Each batch is checkpointed atomically after every epoch
(``checkpoints/<fingerprint>/batch-<first sample>.pt``); ``--resume`` continues unfinished
batches from there (same options; a larger ``--n_epochs`` extends training), and finished
networks are not recomputed (``parts/``).

Training follows ``--procedure`` (default ``windows``: truncated back-propagation through
``--window``-long windows of trajectories carried on across epochs, ``--replicas`` per
network; ``single``: the original one-window procedure), see
:mod:`nrmkit.training.spectrum`. Every number called *evaluated* comes from separate runs:
a fresh initial state (its own random stream), ``--eval_ttrans`` warm-up, ``--eval_tsim``
of accumulation, no gradient — the same state before, during and after training.

results.json: its keys are documented once, on the workflow's page
(``docs/workflows/train_rd_model.md``), and a test checks them against what the workflow writes.
Arrays: ``trained_parameters.npz`` (gains, shifts per network; weights when trained),
``spectra.npz`` (initial, final ``[sample, k]`` evaluated; loss, lambda_max ``[epoch, sample]``
of training, NaN after a network stopped; epochs_run; loss_initial, loss_final ``[sample]``
evaluated; baseline_gains ``[M]``, baseline_loss, baseline_lambda_max ``[sample, M]``),
``masks.npz`` (fixed-parameter runs);
``training_log.csv`` (epoch, sample, loss, λ_max, gradient norm of each trained set before
clipping, frozen); the trained networks ``model.pt`` and the same networks before training
``model_initial.pt`` (load either with :func:`nrmkit.training.checkpoint.load_trained_model`;
``spectrum --model RUN_DIR`` analyses them).
Figures: ``figures/training`` (loss, λ_max per epoch, spectrum before/after) and
``figures/trained_parameters`` (gains and shifts per population or per neuron).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nrmkit.core.base import IncrementalSweep, MemoryTerm
from nrmkit.core.checks import check, check_finite
from nrmkit.core.registry import LOSSES
from nrmkit.experiments.lyapunov.settings import (
    DRAW_BYTES_PER_ENTRY,
    MAX_STEPS,
    RESULT_BYTES_PER_VALUE,
    LyapunovSettings,
    default_value,
    engine_memory,
    memory_term,
    naming_divergence,
    plural,
    raised,
    steps_growth,
)
from nrmkit.training import BASELINE_GAINS, PROCEDURES

CHECKPOINTS = "checkpoints"


#: QR interval of the evaluation runs (chosen from a pilot run, see ``lyapunov_spectrum``).
EVALUATION_TONS = "auto"


#: default evaluation length in epochs' simulated time (``--eval_tsim = 4 · --tsim``).
EVALUATION_EPOCHS = 4


#: default window of the windows procedure [τ] (at most --tsim).
DEFAULT_WINDOW = 10.0


#: floats the autograd graph keeps per Euler step and network, per stacked row ``[φ | φ'⊙Q]``
#: and as state-sized tensors (fitted to peak RSS at k = 1 and k = 30, N = 300).
GRAPH_ROW_FLOATS = 2


GRAPH_STATE_FLOATS = 10


#: a Python float in a list (the object and its slot) [bytes].
PYTHON_FLOAT_BYTES = 32


#: what to try after a training run diverged.
TRAINING_DIVERGENCE_HINT = "try a smaller --dt, --g or --lr, or --dtype float64"


@dataclass(frozen=True)
class TrainingSettings(LyapunovSettings):
    """Options shared by the training workflows (times in τ)."""

    n: int = 100
    nle: int | None = 10
    tsim: float = 100.0
    tons: float = 0.2
    ttrans: float = 50.0
    activation: str = "tanh_stretch"
    n_samples: int = 1
    samples_per_batch: int = 1
    n_epochs: int = 100
    loss: str = "MSE"
    target: float = 0.0
    lr: float = 0.01
    clip: float = 1.0
    procedure: str = "windows"
    window: float | None = None
    replicas: int = 4
    eval_tsim: float | None = None
    eval_ttrans: float | None = None
    baseline: bool = True
    early_stopping: float | None = None
    spectrum_every: int = 10
    spectrum_nle: int | None = None
    train_weights: bool = False
    train_gains: bool = True
    train_shifts: bool = True

    def __post_init__(self):
        super().__post_init__()
        check(self.n_samples >= 1, "--n_samples", f"must be at least 1, got {self.n_samples}")
        check(1 <= self.samples_per_batch <= self.n_samples, "--samples_per_batch",
              f"must lie in [1, --n_samples = {self.n_samples}], got {self.samples_per_batch}")
        check(self.n_epochs >= 1, "--n_epochs", f"must be at least 1, got {self.n_epochs}")
        check(self.loss in LOSSES, "--loss", f"unknown loss {self.loss!r}")
        object.__setattr__(self, "loss", LOSSES.canonical(self.loss))
        if self.window is None:
            object.__setattr__(self, "window", min(DEFAULT_WINDOW, self.tsim))
        explicit_evaluation = self.eval_tsim is not None
        if self.eval_tsim is None:
            object.__setattr__(self, "eval_tsim", EVALUATION_EPOCHS * self.tsim)
        if self.eval_ttrans is None:
            object.__setattr__(self, "eval_ttrans", self.tsim)
        for name in ("target", "lr", "clip", "window", "eval_tsim", "eval_ttrans"):
            check_finite(getattr(self, name), f"--{name}")
        check(self.procedure in PROCEDURES, "--procedure",
              f"choose from {', '.join(PROCEDURES)}, got {self.procedure!r}")
        check(self.tons <= self.window, "--window",
              f"must be at least --tons ({self.window} < {self.tons})")
        check(self.window <= self.tsim, "--window",
              f"cannot exceed --tsim ({self.window} > {self.tsim})")
        check(1 <= self.replicas <= 1024, "--replicas",
              f"must lie in [1, 1024], got {self.replicas}")
        check(self.eval_tsim >= self.tons, "--eval_tsim",
              f"must be at least --tons ({self.eval_tsim} < {self.tons})")
        check(self.eval_ttrans >= 0, "--eval_ttrans",
              f"must be non-negative, got {self.eval_ttrans}")
        check(not explicit_evaluation or self.eval_tsim / self.dt <= MAX_STEPS,
              "--eval_tsim",
              f"more than {MAX_STEPS:.0e} Euler steps: use a shorter run or a larger --dt")
        if self.early_stopping is not None:
            check_finite(self.early_stopping, "--early_stopping")
        check(self.lr > 0, "--lr", f"must be positive, got {self.lr}")
        check(self.clip > 0, "--clip", f"must be positive, got {self.clip}")
        check(self.spectrum_every >= 1, "--spectrum_every",
              f"must be at least 1, got {self.spectrum_every}")
        check(self.trained_sets != (), "--train_gains",
              "nothing to train: enable --train_weights, --train_gains or --train_shifts")
        check(not (self.activation == "tanh" and (self.train_gains or self.train_shifts)),
              "--activation", "tanh ignores gains and shifts: use tanh_stretch or tanh_pos")
        spectrum_nle = min(self.n, 50) if self.spectrum_nle is None else self.spectrum_nle
        check(1 <= spectrum_nle <= self.n, "--spectrum_nle",
              f"must lie in [1, {self.n}], got {spectrum_nle}")
        object.__setattr__(self, "spectrum_nle", spectrum_nle)

    @property
    def eval_nle(self) -> int:
        """Exponents of the evaluation runs: enough for the loss and the logged spectra."""
        return max(self.nle, self.spectrum_nle)

    @property
    def trained_sets(self) -> tuple[str, ...]:
        flags = {"weights": self.train_weights, "gains": self.train_gains,
                 "shifts": self.train_shifts}
        return tuple(name for name, on in flags.items() if on)


@dataclass
class NetworkBatch:
    """What a training workflow builds: the model and what to record about it.

    Attributes:
        model: a :class:`~nrmkit.nn.rate_rnn.RateRNN` of one network per generator given to
            :meth:`TrainOnSpectrum.build`.
        masks: fixed masks of trainable entries per set (may be empty).
        populations: names of the populations sharing gains/shifts (None: per neuron).
        description: one line for the log and figure titles.
    """

    model: Any
    masks: dict[str, Any] = field(default_factory=dict)
    populations: list[str] | None = None
    description: str = ""


class TrainOnSpectrum(IncrementalSweep):
    """The training loop shared by the training workflows: one unit per network (sample).

    Subclasses implement :meth:`build` (and :meth:`prepare` for data shared by every
    network). Network ``s`` draws everything random (matrix, masks, initial state, tangent
    basis) from its own seed
    stream ``(seed, s, "network")`` and is
    trained in its batch of ``--samples_per_batch`` consecutive samples (default: alone), so
    its numbers are the same whichever executor or chunk trains it (the batch does matter:
    batched products round differently in float32, which training on chaotic dynamics
    amplifies).
    """

    unit_name = "sample"
    resumable = True
    #: whether the networks have dense N×N weight matrices of their own (random networks)
    #: or share one sparse connectome.
    dense_weights: bool = True

    def prepare(self, config: Any, context: Any) -> Any:
        """Data every network of a chunk shares (a connectome); default none."""
        return None

    @abstractmethod
    def build(self, config: Any, context: Any, generators: list, shared: Any) -> NetworkBatch:
        """The initial networks, one per generator (each drawn from its own generator)."""

    def memory_terms(self, config: Any, *, itemsize: int) -> list[MemoryTerm]:
        """A batch of ``B = --samples_per_batch`` networks of ``N`` neurons trained together
        on ``k = nle`` exponents, back-propagating through ``T = (tbasis + tsim)/dt`` Euler
        steps in ``T / s`` re-orthonormalisations of ``s`` steps each (``i = itemsize``;
        bytes):

        * autograd graph ``T · B · N · i · (2·(k+1) + 10) + (T/s) · B · k · (N+k) · i``: per
          step the stacked rows ``[φ | φ'⊙Q]`` and the basis, and ≈ 10 state-sized tensors
          of the activation with its gains and shifts; per re-orthonormalisation the QR's Q
          and R;
        * logged spectra (``k' = --spectrum_nle``, no graph): the engine's working set and
          history (:func:`~nrmkit.experiments.lyapunov.settings.engine_memory`);
        * per-epoch records: ``n_epochs · (32 · B · (k + 4 + sets + k'/e) + 128 · n_samples
          · (6 + sets + k'/e))`` (``e = --spectrum_every``): the trainer's history of Python
          floats (spectrum, loss, λ_max, gradient norms), then every sample's padded arrays
          and the lists of ``results.json``;
        * dense weights of the batch ``B · N² · i · (4 + 4·w) + 16 · N²`` (``w = 1`` when
          the weights are trained: gradient, Adam's two moments, the copy that keeps frozen
          entries) and of the model rebuilt from all ``n_samples`` networks at the end,
          ``n_samples · N² · i · (4 + w)``; none for a sparse connectome.

        Measured (float32, peak RSS above the same run at N = 20 and tsim = 1, samples =
        batch): ``--n 300 --nle 30 --samples_per_batch 8 --tsim 50``: 458 MiB for 469
        estimated; ``--n 300 --nle 1 --samples_per_batch 64 --tsim 50``: 647 MiB for 763;
        ``--n 2000 --nle 1 --samples_per_batch 4 --tsim 1``: 374 MiB for 555, with
        ``--train_weights true`` 527 MiB for 860 (the batch and the rebuilt model are not
        alive at once: with samples = batch their sum overestimates).
        """
        batch, n, k, i = config.samples_per_batch, config.n, config.nle, itemsize
        steps = (config.window / config.dt if config.procedure == "windows"
                 else config.tangent_steps)
        batch *= config.replicas  # the graph holds every replica's trajectory
        intervals = steps / config.steps_per_ons
        graph = (steps * batch * n * i * (GRAPH_ROW_FLOATS * (k + 1) + GRAPH_STATE_FLOATS)
                 + intervals * batch * k * (n + k) * i)
        spectrum_k = config.eval_nle
        evaluated = config.samples_per_batch * (len(BASELINE_GAINS) if config.baseline else 1)
        working, history = engine_memory(
            networks=evaluated, n=n, nle=spectrum_k,
            n_ons=config.eval_tsim / config.tons_effective, itemsize=i)
        sizes = {"--n": raised(config, "--n")} if self.dense_weights else {}
        per_batch = {"--samples_per_batch": raised(config, "--samples_per_batch")}
        terms = [
            memory_term({**per_batch, **steps_growth(config), **sizes,
                         "--nle": raised(config, "--nle")}, graph,
                        f"the autograd graph of {plural(batch, 'network')} of {n} neurons "
                        f"over {plural(round(steps), 'Euler step')} with "
                        f"{plural(k, 'tangent vector')}"),
            memory_term({**per_batch, "--spectrum_nle": raised(config, "--spectrum_nle"),
                         evaluation_option(config): config.eval_tsim / (
                            EVALUATION_EPOCHS * default_value(config, "--tsim")), **sizes},
                        working + history,
                        f"the evaluation runs of {plural(spectrum_k, 'exponent')} of "
                        f"{plural(evaluated, 'network')}"),
        ]
        logged_per_epoch = spectrum_k / config.spectrum_every
        sets = len(config.trained_sets)
        terms.append(memory_term(
            {"--n_epochs": raised(config, "--n_epochs"), **per_batch,
             "--n_samples": raised(config, "--n_samples")},
            config.n_epochs * (
                PYTHON_FLOAT_BYTES * batch * (k + 4 + sets + logged_per_epoch)
                + RESULT_BYTES_PER_VALUE * config.n_samples * (6 + sets + logged_per_epoch)),
            f"the per-epoch records of {plural(config.n_epochs, 'epoch')} of "
            f"{plural(config.n_samples, 'sample')}"))
        if self.dense_weights:
            trained = "weights" in config.trained_sets
            square = {"--n": raised(config, "--n", 2)}
            terms += [
                memory_term({**per_batch, **square},
                            batch * n * n * i * (4 + 4 * trained) + DRAW_BYTES_PER_ENTRY * n * n,
                            f"the {n}×{n} weight matrices of {plural(batch, 'network')}"
                            + (" with their gradients and Adam moments" if trained else "")),
                memory_term({"--n_samples": raised(config, "--n_samples"), **square},
                            config.n_samples * n * n * i * (4 + trained),
                            f"the {n}×{n} weight matrices of "
                            f"{plural(config.n_samples, 'sample')} in the saved model"),
            ]
        return terms

    def describe_network(self, config: Any, sample: int) -> str:
        """The parameters of network ``sample`` that a divergence message names."""
        return f"g={config.g:g}, sample {sample}"

    def n_units(self, config: Any) -> int:
        return config.n_samples

    def unit_group(self, config: Any) -> int:
        return config.samples_per_batch

    def iter_units(self, config: Any, context: Any, units: list[int]):
        """Train the batches holding ``units`` one after the other, yielding each when done
        (batch ``b`` = samples ``b·B … (b+1)·B − 1``, ``B = --samples_per_batch``)."""
        import numpy as np

        size = config.samples_per_batch
        batches = sorted({unit // size for unit in units})
        context.log(f"{self.name}: training {', '.join(config.trained_sets)} on the top "
                    f"{config.nle} exponents ({config.loss}, target {config.target:g}) for "
                    f"{config.n_epochs} epochs; {len(units)} of {config.n_samples} sample(s) "
                    f"here, {size} per batch, N={config.n}")
        shared = self.prepare(config, context)
        folder = checkpoint_folder(config, context)
        progress = context.progress("epochs")
        for position, batch_index in enumerate(batches):
            def report(epoch: int, position: int = position) -> None:
                progress(position * config.n_epochs + epoch, len(batches) * config.n_epochs)

            samples = list(range(batch_index * size, min((batch_index + 1) * size,
                                                         config.n_samples)))
            records = self.train_batch(config, context, samples, shared, folder, report)
            wanted = [i for i, sample in enumerate(samples) if sample in units]
            yield [samples[i] for i in wanted], {
                name: np.stack([records[i][name] for i in wanted]) for name in records[0]}

    def train_batch(self, config: Any, context: Any, samples: list[int], shared: Any,
                    folder: Any, report: Callable[[int], None]) -> list[dict[str, Any]]:
        """Train the networks of ``samples`` in one batch (resuming from its checkpoint);
        one padded record per network (:func:`network_record`).

        Network ``s`` draws its matrix and training trajectories (``--replicas`` initial
        states and bases) from the stream ``(seed, s, "network")``, and its evaluation state
        and basis from the independent stream ``(seed, s, "evaluation")``: the evaluations
        before, during and after training start from that same state (common random
        numbers), never from a training trajectory.
        """
        import torch

        from nrmkit.dynamics.lyapunov import random_basis
        from nrmkit.nn.connectivity import normal_like
        from nrmkit.runs.checkpoints import EpochCheckpoint
        from nrmkit.training.losses import get_loss
        from nrmkit.training.spectrum import SpectrumTrainer

        n_networks = len(samples)
        name = f"samples {samples[0]}-{samples[-1]}" if n_networks > 1 else f"sample {samples[0]}"
        path = None if folder is None else folder / f"batch-{samples[0]:05d}.pt"
        resuming = path is not None and path.exists()
        context.log(f"{self.name}: {name}: building {plural(n_networks, 'network')} of "
                    f"{config.n} neurons" + ("" if resuming else " and evaluating them"))
        generators = [context.stream("network", unit=sample) for sample in samples]
        batch = self.build(config, context, generators, shared)
        model = batch.model
        shape = model.batch_shape
        everyone = [(i,) for i in range(n_networks)]

        def describe(index: tuple[int, ...]) -> str:
            flat = index[0] if len(index) == 1 else index[0] * shape[1] + index[1]
            return self.describe_network(config, samples[flat])

        dtype, device = model.weight.dtype, model.weight.device
        n, k, replicas = model.state_dim, config.nle, config.replicas

        def draws(generator_of, count: int, k: int) -> tuple[Any, Any]:
            """States ``(*shape, count, N)`` and bases ``(*shape, count, k, N)``."""
            states, bases = [], []
            for generator in generator_of:
                states.append(normal_like((count, n), generator=generator, dtype=dtype,
                                          device=device))
                bases.append(random_basis((count,), k, n, generator=generator, dtype=dtype,
                                          device=device))
            return (model.initial_std * torch.stack(states).reshape(*shape, count, n),
                    torch.stack(bases).reshape(*shape, count, k, n))

        state, basis = draws(generators, replicas, k)
        evaluation_generators = [context.stream("evaluation", unit=sample)
                                 for sample in samples]
        eval_state, eval_basis = draws(evaluation_generators, 1, config.eval_nle)
        evaluation = Evaluation(config, get_loss(config.loss), eval_state[..., 0, :],
                                eval_basis[..., 0, :, :])
        trainer = SpectrumTrainer(
            model, n_exponents=k, loss=get_loss(config.loss), target=config.target,
            tsim=config.tsim, tons=config.tons, ttrans=config.ttrans, tbasis=config.tbasis,
            state=state, basis=basis, train=config.trained_sets, lr=config.lr,
            clip=config.clip, masks=batch.masks, early_stopping=config.early_stopping,
            procedure=config.procedure, window=config.window,
        )
        checkpoint = EpochCheckpoint(path, trainer, extra=lambda: {"evaluation": {
            key: torch.as_tensor(value) for key, value in before.items()}})
        if resuming:
            saved = checkpoint.restore()
            before = {key: value.numpy() for key, value in saved["evaluation"].items()}
            context.log(f"{self.name}: {name} resume at epoch {trainer.epoch}")
        else:
            with naming_divergence(describe, hint=TRAINING_DIVERGENCE_HINT, every=everyone):
                before = evaluation.initial(model)
        if samples[0] == 0:
            context.log(f"{self.name}: {batch.description}")

        def end_of_epoch(epoch: int, metrics: dict) -> None:
            if (epoch + 1) % config.spectrum_every == 0:
                metrics["logged_spectrum"] = evaluation.spectra(
                    trainer.trained_networks())[:, :config.spectrum_nle].tolist()
            checkpoint(epoch)
            report(epoch + 1)
            losses = ", ".join(f"{value:.5g}" for value in metrics["loss"])
            context.log(f"  {name}, epoch {epoch + 1:4d}: loss {losses}; λ_max "
                        + ", ".join(f"{value:+.4f}" for value in metrics["lambda_max"]))

        finished = config.early_stopping is not None and bool(trainer.frozen.all())
        if not finished:
            with naming_divergence(lambda index: f"{describe(index)}, epoch {trainer.epoch + 1}",
                                   hint=TRAINING_DIVERGENCE_HINT, every=everyone):
                trainer.fit(config.n_epochs, on_epoch_end=(end_of_epoch,))
        with naming_divergence(describe, hint=TRAINING_DIVERGENCE_HINT, every=everyone):
            final = evaluation.spectra(trainer.trained_networks())
        return [network_record(config, trainer, i, before, final, batch.masks)
                for i in range(n_networks)]

    def aggregate(self, config: Any, context: Any, arrays: Any) -> dict[str, Any]:
        import numpy as np
        import torch

        from nrmkit import plotting
        from nrmkit.training.checkpoint import save_model
        from nrmkit.training.losses import get_loss
        from nrmkit.training.spectrum import BASELINE_GAINS, PARAMETER_SETS

        n_samples = config.n_samples
        lengths = arrays["epochs_run"].astype(int)
        epochs = int(lengths.max())
        losses = arrays["loss"][:, :epochs].T                     # (epochs, samples), NaN
        lambda_max = arrays["lambda_max"][:, :epochs].T           # after an early stop
        k, shown = config.nle, config.spectrum_nle
        initial = arrays["eval_initial"][:, :shown]
        final = arrays["eval_final"][:, :shown]
        loss = get_loss(config.loss)

        def evaluated(spectra: Any) -> Any:
            return loss(torch.as_tensor(spectra[:, :k]), config.target).numpy()

        loss_initial = evaluated(arrays["eval_initial"])
        loss_final = evaluated(arrays["eval_final"])
        gains = np.asarray(BASELINE_GAINS)
        best = np.nanargmin(np.nan_to_num(arrays["baseline_loss"], nan=np.inf), axis=1)
        counts = dict(zip(PARAMETER_SETS, (int(c) for c in arrays["n_trainable"][0]),
                          strict=True))
        samples = [{
            "loss": arrays["loss"][i, :lengths[i]],
            "lambda_max": arrays["lambda_max"][i, :lengths[i]],
            "evaluation": {
                "loss_initial": float(loss_initial[i]), "loss_final": float(loss_final[i]),
                "lambda_max_initial": float(initial[i, 0]),
                "lambda_max_final": float(final[i, 0]),
            },
            "baseline_global_gain": None if not config.baseline else {
                "gain": float(gains[best[i]]),
                "loss": float(arrays["baseline_loss"][i, best[i]]),
                "lambda_max": float(arrays["baseline_lambda_max"][i, best[i]]),
            },
            "spectrum_initial": initial[i], "spectrum_final": final[i],
            "n_trainable": counts, "epochs_run": int(lengths[i]),
            "stopped_early": bool(arrays["stopped_early"][i]),
        } for i in range(n_samples)]
        logged = arrays["logged_spectrum"]                        # (samples, logs, k)
        spectra = {}
        for row in range(logged.shape[1]):
            epoch = (row + 1) * config.spectrum_every
            if epoch <= epochs:
                spectra[str(epoch)] = [None if np.isnan(logged[i, row]).any()
                                       else logged[i, row] for i in range(n_samples)]

        generators = [context.stream("network", unit=unit) for unit in range(n_samples)]
        batch = self.build(config, context, generators, self.prepare(config, context))
        model = batch.model
        run_dir = context.run_dir
        if run_dir.path is not None:
            save_model(run_dir.path / "model_initial.pt", model)
        trained = {"gains": arrays["gains"], "shifts": arrays["shifts"]}
        if "weights" in config.trained_sets:
            trained["weights"] = arrays["weights"]
        with torch.no_grad():
            for name, values in trained.items():
                parameter = {"weights": model.weight, "gains": model.gain,
                             "shifts": model.shift}[name]
                parameter.copy_(torch.as_tensor(values).reshape(parameter.shape))
        run_dir.write_arrays("trained_parameters.npz", **trained)
        masks = {name[len("mask_"):]: arrays[name] for name in arrays
                 if name.startswith("mask_")}
        if masks:
            run_dir.write_arrays("masks.npz", **masks)
        run_dir.write_arrays("spectra.npz", initial=initial, final=final, loss=losses,
                             lambda_max=lambda_max, epochs_run=lengths,
                             loss_initial=loss_initial, loss_final=loss_final,
                             baseline_gains=gains, baseline_loss=arrays["baseline_loss"],
                             baseline_lambda_max=arrays["baseline_lambda_max"])
        run_dir.write_text("training_log.csv", _csv(arrays, config.trained_sets))
        if run_dir.path is not None:
            save_model(run_dir.path / "model.pt", model)
        description = f"{batch.description}, {n_samples} sample(s)"
        figure = plotting.training_curves(
            losses, lambda_max, initial, final, target=config.target,
            evaluated=(loss_initial, loss_final),
            baseline=None if not config.baseline else np.array(
                [sample["baseline_global_gain"]["loss"] for sample in samples]),
            title=f"{self.name}: {description}")
        run_dir.save_figure(figure, "training")
        populations = batch.populations
        if populations is not None:  # "name (neurons)"
            sizes = np.bincount(model.population.cpu().numpy(), minlength=len(populations))
            populations = [f"{name} ({size})" for name, size in zip(populations, sizes,
                                                                    strict=True)]
        figure = plotting.trained_parameters(arrays["gains"], arrays["shifts"],
                                             populations=populations,
                                             title=f"{self.name}: {description}")
        run_dir.save_figure(figure, "trained_parameters")
        seconds_per_epoch = float(np.mean(arrays["seconds_per_epoch"]))
        context.log(f"{self.name}: evaluated loss {_span(loss_initial)} → {_span(loss_final)}, "
                    f"λ_max {_span(initial[:, 0])} → {_span(final[:, 0])} over "
                    f"{plural(n_samples, 'sample')}"
                    + ("" if not config.baseline else ", best global gain: loss "
                       + _span(np.array([x["baseline_global_gain"]["loss"] for x in samples])))
                    + f"; {seconds_per_epoch:.2f} s per epoch")
        return {
            "samples": samples,
            "procedure": config.procedure,
            "seconds_per_epoch": seconds_per_epoch,
            "baseline_gains": gains if config.baseline else None,
            "target": config.target,
            "loss": config.loss,
            "nle": config.nle,
            "spectrum_nle": config.spectrum_nle,
            "epochs": epochs,
            "spectra": spectra,
            "populations": batch.populations,
        }


class Evaluation:
    """The independent evaluation runs of a batch of networks: from each network's evaluation
    state ``(S, G, N)`` and basis ``(S, G, k', N)`` (``k' = max(nle, spectrum_nle)``), a
    warm-up of ``--eval_ttrans`` and ``--eval_tsim`` of accumulation, no gradient, the QR
    interval chosen by ``tons="auto"`` (the exponents do not depend on it within the dtype's
    precision, which ``auto`` respects; see
    :func:`nrmkit.training.spectrum.evaluate_spectra`)."""

    def __init__(self, config: Any, loss: Callable, state: Any, basis: Any):
        self.config, self.loss, self.state, self.basis = config, loss, state, basis

    def spectra(self, model: Any) -> Any:
        """``(n_networks, k')`` float64 exponents, descending."""
        from nrmkit.training.spectrum import evaluate_spectra

        config = self.config
        exponents = evaluate_spectra(model, config.eval_nle, state=self.state,
                                     basis=self.basis, tsim=config.eval_tsim,
                                     tons=EVALUATION_TONS, ttrans=config.eval_ttrans)
        return exponents.reshape(-1, config.eval_nle).cpu().double().numpy()

    def initial(self, model: Any) -> dict[str, Any]:
        """The untrained networks: ``spectrum (n_networks, k')`` and, with ``--baseline``,
        the global-gain scan ``baseline_loss``, ``baseline_lambda_max`` ``(n_networks, M)``
        (:func:`nrmkit.training.spectrum.global_gain_baseline`)."""
        import numpy as np

        from nrmkit.training.spectrum import BASELINE_GAINS, global_gain_baseline

        config = self.config
        record = {"spectrum": self.spectra(model)}
        n_networks = record["spectrum"].shape[0]
        if config.baseline:
            k = config.nle
            scan = global_gain_baseline(
                model, k, loss=self.loss, target=config.target, state=self.state,
                basis=self.basis[..., :k, :].contiguous(), tsim=config.eval_tsim,
                tons=config.tons, ttrans=config.eval_ttrans)
            record["baseline_loss"] = scan["loss"].cpu().double().numpy()
            record["baseline_lambda_max"] = scan["lambda_max"].cpu().double().numpy()
        else:
            empty = np.full((n_networks, len(BASELINE_GAINS)), np.nan)
            record["baseline_loss"], record["baseline_lambda_max"] = empty, empty.copy()
        return record


def evaluation_option(config: Any) -> str:
    """The option that set the evaluation length: ``--tsim`` when ``--eval_tsim`` is its
    default (``4 · --tsim``)."""
    derived = config.eval_tsim == EVALUATION_EPOCHS * config.tsim
    return "--tsim" if derived else "--eval_tsim"


def checkpoint_folder(config: Any, context: Any) -> Any:
    """``RUN/checkpoints/<fingerprint>``: one checkpoint per sample, kept across runs that
    differ only in ``--n_epochs`` (so that ``--resume`` can extend training)."""
    from pathlib import Path

    from nrmkit.runs.sweep import fingerprint

    if context.run_dir.path is None:
        return None
    return Path(context.run_dir.path) / CHECKPOINTS / fingerprint(
        config, context.seed, context.dtype, exclude=("n_epochs",))


def network_record(config: Any, trainer: Any, index: int, before: dict[str, Any],
                   final: Any, masks: dict[str, Any]) -> dict[str, Any]:
    """Network ``index`` of a trained batch as fixed-shape arrays (epochs after it stopped, or
    beyond ``--n_epochs``, are NaN).

    Keys: ``loss``, ``lambda_max`` ``(n_epochs,)``; ``grad_norm`` ``(n_epochs, sets)``
    (before clipping); ``frozen`` ``(n_epochs,)``; ``logged_spectrum`` ``(n_epochs //
    spectrum_every, spectrum_nle)``; ``eval_initial``, ``eval_final`` ``(k',)``: the
    evaluation spectra before and after training (``before``: :meth:`Evaluation.initial`,
    ``final``: :meth:`Evaluation.spectra`); ``baseline_loss``, ``baseline_lambda_max``
    ``(M,)``; ``gains``, ``shifts`` (and ``weights`` when trained); ``mask_<set>`` for masked
    sets; ``epochs_run``, ``stopped_early``, ``n_trainable`` (per set of
    ``PARAMETER_SETS``); ``seconds_per_epoch`` (of the batch's training, evaluations
    excluded).
    """
    import numpy as np

    from nrmkit.training.spectrum import PARAMETER_SETS

    n_epochs, sets = config.n_epochs, config.trained_sets
    epochs_run = int(trainer.epochs_run[index])
    history = trainer.history[:epochs_run]

    def padded(values: list, shape: tuple[int, ...]) -> Any:
        out = np.full(shape, np.nan)
        if values:
            out[:len(values)] = np.asarray(values, dtype=np.float64)
        return out

    logged = [epoch["logged_spectrum"][index] for epoch in history
              if "logged_spectrum" in epoch]
    record = {
        "loss": padded([epoch["loss"][index] for epoch in history], (n_epochs,)),
        "lambda_max": padded([epoch["lambda_max"][index] for epoch in history], (n_epochs,)),
        "grad_norm": padded([[epoch["grad_norm"][name][index] for name in sets]
                             for epoch in history], (n_epochs, len(sets))),
        "frozen": padded([epoch["frozen"][index] for epoch in history], (n_epochs,)),
        "logged_spectrum": padded(logged, (n_epochs // config.spectrum_every,
                                           config.spectrum_nle)),
        "eval_initial": before["spectrum"][index],
        "eval_final": final[index],
        "baseline_loss": before["baseline_loss"][index],
        "baseline_lambda_max": before["baseline_lambda_max"][index],
        "gains": trainer.network_parameter("gains").cpu().numpy()[index],
        "shifts": trainer.network_parameter("shifts").cpu().numpy()[index],
        "seconds_per_epoch": np.float64(trainer.seconds / max(trainer.epoch, 1)),
        "epochs_run": np.int64(epochs_run),
        "stopped_early": np.bool_(config.early_stopping is not None
                                  and bool(trainer.frozen[index])),
        "n_trainable": np.array([trainer.n_trainable()[name] for name in PARAMETER_SETS]),
    }
    if "weights" in sets:
        weight = trainer.trained_networks().weight.detach().cpu().numpy()
        record["weights"] = weight.reshape(-1, *weight.shape[-2:])[index]
    for name, mask in masks.items():
        record[f"mask_{name}"] = mask.cpu().numpy()[index]
    return record


def _span(values: Any) -> str:
    """``value`` (one sample) or ``[min, max]``."""
    if len(values) == 1:
        return f"{values[0]:.4g}"
    return f"[{min(values):.4g}, {max(values):.4g}]"


def _csv(arrays: dict[str, Any], sets: tuple[str, ...]) -> str:
    """One line per network and epoch: loss, λ_max, the gradient norm of each set (before
    clipping) and whether the network froze (early stopping) at that epoch."""
    columns = ["epoch", "sample", "loss", "lambda_max", *[f"grad_norm_{s}" for s in sets],
               "frozen"]
    lines = [",".join(columns)]
    lengths = arrays["epochs_run"].astype(int)
    for epoch in range(int(lengths.max())):
        for sample, length in enumerate(lengths):
            if epoch >= length:
                continue
            norms = [f"{arrays['grad_norm'][sample, epoch, j]:.6g}" for j in range(len(sets))]
            lines.append(",".join([str(epoch + 1), str(sample),
                                   f"{arrays['loss'][sample, epoch]:.8g}",
                                   f"{arrays['lambda_max'][sample, epoch]:.8g}", *norms,
                                   str(int(arrays["frozen"][sample, epoch]))]))
    return "\n".join(lines) + "\n"
