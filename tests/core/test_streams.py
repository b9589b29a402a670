"""One seeding scheme: every random stream comes from ``(seed, unit, purpose)``, and no two
(unit, purpose) pairs of a sweep — nor of neighbouring seeds of a seed sweep — share one."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from nrmkit.core import streams
from nrmkit.core.registry import WORKFLOWS
from nrmkit.core.streams import numpy_generator, stream_seed, torch_generator

PACKAGE = Path(__file__).resolve().parents[2] / "nrmkit"

#: tiny sweeps of several units (samples, networks, trials, seeds) of every family.
SWEEPS = {
    "transition_2_chaos": ["--gmin", "0.5", "--gmax", "2", "--m_g", "2", "--n_samples", "3",
                           "--n", "12", "--tsim", "2", "--ttrans", "1"],
    "lyapu_convergence": ["--n", "12", "--nle", "3", "--n_samples", "2", "--tsim", "2",
                          "--ttrans", "1", "--tons", "0.5"],
    "train_rd_model": ["--n", "12", "--nle", "2", "--n_samples", "3", "--n_epochs", "1",
                       "--tsim", "2", "--ttrans", "1", "--spectrum_nle", "2", "--baseline",
                       "false"],
    "train_glifr": ["--task", "sine", "--hidden", "6", "--epochs", "1", "--ntrials", "3"],
    "smnist": ["--nhid", "4", "--nonlin", "tanh", "--input", "rows", "--epochs", "1",
               "--batch", "256", "--no-fractional_order", "--n_seeds", "3", "--seed", "3"],
    "rate_to_lif": ["--n", "12", "--n_trials", "2", "--lif_trials", "2", "--lambdas", "20",
                    "--lambdas", "40"],
}


@pytest.fixture(scope="module")
def recorded():
    """Run every sweep of :data:`SWEEPS` (nothing saved) and record each stream it draws:
    ``{workflow: {(seed, unit, purpose): stream seed}}``."""
    import nrmkit.experiments.sequences.single_run as single_run

    records: dict[str, dict[tuple[int, int, str], int]] = {}
    original = streams.stream_seed

    def recording(seed: int, unit: int, purpose: str) -> int:
        value = original(seed, unit, purpose)
        records[current].setdefault((int(seed), int(unit), purpose), value)
        return value

    patch = pytest.MonkeyPatch()
    try:
        patch.setattr(streams, "stream_seed", recording)
        patch.setattr(single_run, "stream_seed", recording)
        for current in SWEEPS:
            records[current] = {}
            done = CliRunner().invoke(WORKFLOWS.get(current),
                                      [*SWEEPS[current], "--save", "false", "--quiet"])
            assert done.exit_code == 0, (current, done.output)
    finally:
        patch.undo()
    return records


def test_every_sweep_draws_from_named_streams_of_its_units(recorded):
    for name, keys in recorded.items():
        assert keys, f"{name} drew no named stream"
        units = {unit for _, unit, _ in keys}
        expected = {"transition_2_chaos": 3, "train_rd_model": 3, "train_glifr": 3}
        if name in expected:
            assert units == set(range(expected[name])), (name, units)


def test_no_two_streams_of_any_sweep_coincide(recorded):
    """Within each sweep and across all of them (a seed sweep's seed s and s + 1 included),
    distinct (seed, unit, purpose) keys give distinct streams."""
    everything: dict[tuple[int, int, str], int] = {}
    for keys in recorded.values():
        everything.update(keys)
    assert len(set(everything.values())) == len(everything)
    seeds = {seed for seed, _, _ in recorded["smnist"]}
    assert seeds == {3, 4, 5}, "a seed sweep runs each seed as its own run seed"


def test_streams_of_a_grid_of_seeds_units_and_purposes_are_distinct(recorded):
    """The collisions of seed arithmetic (seed + offset: unit k's stream 1 = unit k + 1's
    stream 0) cannot happen: every stream of 0 ≤ seed < 8, 0 ≤ unit < 64 and every purpose the
    workflows use is different."""
    purposes = sorted({purpose for keys in recorded.values() for _, _, purpose in keys})
    assert len(purposes) >= 15
    values = [stream_seed(seed, unit, purpose)
              for seed, unit, purpose in itertools.product(range(8), range(64), purposes)]
    assert len(set(values)) == len(values)


def test_a_stream_is_a_pure_function_of_its_name():
    first = torch.rand(5, generator=torch_generator(7, 3, "batches"))
    again = torch.rand(5, generator=torch_generator(7, 3, "batches"))
    assert torch.equal(first, again)
    assert not torch.equal(first, torch.rand(5, generator=torch_generator(7, 3, "noise")))
    assert (numpy_generator(7, 3, "batches").random(3)
            == numpy_generator(7, 3, "batches").random(3)).all()
    assert 0 <= stream_seed(2**32 - 1, 10**6, "x") < 2**64


def _seed_calls(tree: ast.AST) -> list[str]:
    """``manual_seed(…)``, ``default_rng(…)`` and ``SeedSequence(…)`` calls of a module."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name in ("manual_seed", "default_rng", "SeedSequence", "seed"):
                found.append(f"{name} at line {node.lineno}")
    return found


#: modules that seed a generator themselves, and why.
SEEDING_ALLOWED = {
    "core/streams.py": "the scheme itself",
    "datasets/digits.py": "the fixed data split (--split_seed, a property of the data set, "
                          "not of a run) and a pixel order drawn from a given stream seed",
    "plotting/lyapunov.py": "the horizontal jitter of points in a figure",
}


def test_only_the_streams_module_seeds_generators():
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        calls = _seed_calls(ast.parse(path.read_text()))
        if calls and relative not in SEEDING_ALLOWED:
            offenders[relative] = calls
    assert not offenders, f"seed generators through nrmkit.core.streams: {offenders}"
