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
from nrmkit.experiments.lyapunov.settings import plural
from nrmkit.experiments.spectrum_training.batch import (
    batch_evaluation,
    batch_label,
    checkpoint_folder,
    checkpoint_path,
    draw_states,
    epoch_end,
    evaluation_checkpoint,
    fit,
    naming_networks,
    network_describer,
    restored_evaluation,
    spectrum_trainer,
)
from nrmkit.experiments.spectrum_training.memory import (
    training_memory_terms,
)
from nrmkit.experiments.spectrum_training.records import (
    baseline_losses,
    gather,
    load_parameters,
    logged_spectra,
    network_record,
    population_labels,
    results,
    sample_results,
    save_activity,
    save_figures,
    summary_line,
    trained_parameters,
    write_arrays,
)


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
        """The autograd graph, evaluation runs, per-epoch records and (dense networks) weight
        matrices of a batch: see
        :func:`~nrmkit.experiments.spectrum_training.memory.training_memory_terms`."""
        return training_memory_terms(config, itemsize=itemsize,
                                     dense_weights=self.dense_weights)

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
        n_networks, label = len(samples), batch_label(samples)
        path = checkpoint_path(folder, samples)
        resuming = path is not None and path.exists()
        context.log(f"{self.name}: {label}: building {plural(n_networks, 'network')} of "
                    f"{config.n} neurons" + ("" if resuming else " and evaluating them"))
        generators = [context.stream("network", unit=sample) for sample in samples]
        batch = self.build(config, context, generators, shared)
        describe = network_describer(self.describe_network, config, samples,
                                     batch.model.batch_shape)
        state, basis = draw_states(batch.model, generators, config.replicas, config.nle)
        evaluation = batch_evaluation(config, context, batch.model, samples)
        trainer = spectrum_trainer(config, batch, state, basis)
        if resuming:
            before = restored_evaluation(path, trainer)
            context.log(f"{self.name}: {label} resume at epoch {trainer.epoch}")
        else:
            with naming_networks(describe, n_networks):
                before = evaluation.initial(batch.model)
        if samples[0] == 0:
            context.log(f"{self.name}: {batch.description}")
        checkpoint = evaluation_checkpoint(path, trainer, before)
        fit(config, trainer, epoch_end(config, context, label, trainer, evaluation,
                                       checkpoint, report), describe, n_networks)
        with naming_networks(describe, n_networks):
            final = evaluation.spectra(trainer.trained_networks())
        return [network_record(config, trainer, i, before, final, batch.masks)
                for i in range(n_networks)]

    def aggregate(self, config: Any, context: Any, arrays: Any) -> dict[str, Any]:
        """Gather the records of all networks (:mod:`~nrmkit.experiments.spectrum_training.
        records`): rebuild the initial networks from their streams, save them
        (``model_initial.pt``) and, with the trained parameters, ``model.pt``; write the
        arrays, the figures and the summary line; return ``results.json``."""
        import numpy as np

        from nrmkit.training.checkpoint import save_model

        out = gather(config, arrays)
        samples = sample_results(config, arrays, out)
        spectra = logged_spectra(config, arrays["logged_spectrum"], out.epochs)
        generators = [context.stream("network", unit=unit) for unit in range(config.n_samples)]
        batch = self.build(config, context, generators, self.prepare(config, context))
        run_dir = context.run_dir
        if run_dir.path is not None:
            save_model(run_dir.path / "model_initial.pt", batch.model)
        trained = trained_parameters(config, arrays)
        load_parameters(batch.model, trained)
        write_arrays(run_dir, config, arrays, out, trained)
        if run_dir.path is not None:
            save_model(run_dir.path / "model.pt", batch.model)
        baseline = baseline_losses(samples) if config.baseline else None
        title = f"{self.name}: {batch.description}, {config.n_samples} sample(s)"
        save_figures(run_dir, config, arrays, out, baseline, title=title,
                     populations=population_labels(batch.populations, batch.model))
        save_activity(run_dir, batch.model, context.stream("activity"), title)
        seconds_per_epoch = float(np.mean(arrays["seconds_per_epoch"]))
        context.log(summary_line(self.name, config, out, baseline, seconds_per_epoch))
        return results(config, out, samples, spectra, seconds_per_epoch, batch.populations)
