"""The documentation: one page per registered workflow, listed in the site's navigation, its
options rendered from the click command by ``docs/hooks.py``, and its ``results.json`` keys
(written once, in the page) equal to what the workflow writes, run tiny."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from nrmkit.core.registry import WORKFLOWS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NAMES = WORKFLOWS.names()
KEY_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|(.*)\|\s*$")


def load_hooks():
    spec = importlib.util.spec_from_file_location("nrmkit_docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def page(name: str) -> str:
    return (DOCS / "workflows" / f"{name}.md").read_text(encoding="utf-8")


def documented_keys(name: str) -> tuple[set[str], set[str]]:
    """``(unconditional, conditional)`` keys of the page's ``## results.json`` table; a key is
    conditional when its meaning starts with "When" or contains "(only when"."""
    text = page(name)
    assert "\n## results.json\n" in text, f"{name}: no '## results.json' section"
    section = text.split("\n## results.json\n", 1)[1].split("\n## ", 1)[0]
    lines = section.splitlines()
    start = lines.index("| key | meaning |")
    always, sometimes = set(), set()
    for line in lines[start + 2:]:
        match = KEY_ROW.match(line)
        if not match:
            break
        key, meaning = match.group(1), match.group(2).strip()
        assert key not in always | sometimes, f"{name}: {key} documented twice"
        conditional = meaning.startswith("When") or "(only when" in meaning
        (sometimes if conditional else always).add(key)
    assert always, f"{name}: the results.json table is empty"
    return always, sometimes


def run(name: str, out: Path, *args) -> dict:
    """Run workflow ``name`` in-process into ``out``; its ``results.json``."""
    result = CliRunner().invoke(WORKFLOWS.get(name),
                                [*(str(a) for a in args), "--quiet", "--output-dir", str(out)])
    assert result.exit_code == 0, f"{name} {' '.join(map(str, args))}: {result.output}"
    return json.loads((out / "results.json").read_text())


# ------------------------------------------------------------------------------------------
# (a) the pages

def test_every_workflow_has_a_page_in_the_navigation_with_its_options_marker():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8").split("\nnav:", 1)[1]
    for name in NAMES:
        assert (DOCS / "workflows" / f"{name}.md").is_file(), name
        assert f"workflows/{name}.md" in nav, f"{name}: not in the nav of mkdocs.yml"
        assert f"<!-- options: {name} -->" in page(name), f"{name}: no options marker"
        documented_keys(name)


# ------------------------------------------------------------------------------------------
# (b) results.json keys against tiny runs

LYAPUNOV = ["--tsim", 2, "--ttrans", 1]
TRAINING = ["--nle", 1, "--tsim", 2, "--ttrans", 1, "--n_epochs", 1, "--spectrum_nle", 2,
            "--eval_tsim", 2, "--eval_ttrans", 1, "--replicas", 1]
FLY = ["--cell_classes", "APL,MBON", "--g", 3, *TRAINING]
SMNIST = ["--nhid", 6, "--batch", 64, "--lr", "3e-3", "--input", "rows", "--epochs", 1,
          "--no-fractional_order"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny train_rd_model run, whose networks the analyses read with --model."""
    out = tmp_path_factory.mktemp("docs") / "train_rd_model"
    keys = run("train_rd_model", out, "--n", 10, "--g", 3, "--n_samples", 1, *TRAINING)
    return out, keys


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """A tiny rate_to_lif run in mode all (training, λ grid, evaluation, exponents)."""
    out = tmp_path_factory.mktemp("docs") / "rate_to_lif"
    keys = run("rate_to_lif", out, "--task", "go-nogo", "--n", 10, "--n_trials", 2,
               "--lif_trials", 2, "--lambdas", 20, "--lambdas", 40, "--lyapunov", 2)
    return out, keys


def configurations(name, tmp, trained, converted):
    """The results of the tiny runs of ``name``; together they write every key documented."""
    if name == "transition_2_chaos":
        return [run(name, tmp / "a", "--gmin", 0.5, "--gmax", 2, "--m_g", 2, "--n_samples", 1,
                    "--n", 10, "--nle", 2, *LYAPUNOV)]
    if name == "spectrum":
        return [run(name, tmp / "a", "--g", 2, "--n_samples", 1, "--n", 10, *LYAPUNOV),
                run(name, tmp / "b", "--model", trained[0], *LYAPUNOV)]
    if name == "lyapu_convergence":
        return [run(name, tmp / "a", "--model", trained[0], "--tons", 0.2, "--nle", 2,
                    *LYAPUNOV)]
    if name == "lyapu_benchmark":
        return [run(name, tmp / "a", "--n", 20, "--m_g", 2, "--n_samples", 1, *LYAPUNOV,
                    "--reference-steps", 2, "--independent-steps", 2, "--full-spectrum-n", 10,
                    "--full-spectrum-steps", 2, "--no-scaling")]
    if name == "train_rd_model":
        return [trained[1]]
    if name == "train_rd_model_fixed_param":
        return [run(name, tmp / "a", "--n", 10, "--g", 3, "--n_samples", 1,
                    "--number_param", 5, 3, 2, *TRAINING)]
    if name in ("train_flybrain_full", "train_flybrain_pop"):
        return [run(name, tmp / "a", *FLY)]
    if name == "smnist":
        return [run(name, tmp / "a", *SMNIST),
                run(name, tmp / "b", *SMNIST, "--n_seeds", 2)]
    if name == "smnist_grid":
        return [run(name, tmp / "a", *SMNIST, "--gains", 5, "--saturations", 0,
                    "--saturations", 1)]
    if name == "smnist_analysis":
        run("smnist", tmp / "model", *SMNIST)
        return [run(name, tmp / "a", "--model", tmp / "model", "--samples", 20, "--gains", 5,
                    "--saturations", 0, "--amplitudes", 0, "--amplitudes", 5)]
    if name == "train_glifr":
        return [run(name, tmp / "a", "--task", "sine", "--hidden", 8, "--epochs", 2,
                    "--lr", "3e-3")]
    if name == "rate_to_lif":
        return [converted[1],
                run(name, tmp / "b", "--mode", "eval", "--model", converted[0],
                    "--lambda", 30, "--lif_trials", 2)]
    if name == "ptb_task":
        data = tmp / "ptb"
        data.mkdir()
        for split in ("train", "valid", "test"):
            (data / f"ptb.char.{split}.txt").write_text(" t h e _ c a t _ s a t \n" * 12)
        return [run(name, tmp / "a", "--data-dir", data, "--nhid", 6, "--emsize", 4,
                    "--batch", 4, "--eval_batch", 2, "--bptt", 8, "--epochs", 1)]
    raise AssertionError(f"no tiny configuration for the workflow {name}: add one here")


@pytest.mark.parametrize("name", NAMES)
def test_results_keys_are_the_documented_ones(name, tmp_path, trained, converted, one_thread):
    always, sometimes = documented_keys(name)
    written = set()
    for results in configurations(name, tmp_path, trained, converted):
        keys = set(results)
        assert always <= keys, f"{name}: documented but not written: {sorted(always - keys)}"
        assert keys <= always | sometimes, \
            f"{name}: written but not documented: {sorted(keys - always - sometimes)}"
        written |= keys
    assert sometimes <= written, \
        f"{name}: conditional keys no tested run writes: {sorted(sometimes - written)}"


# ------------------------------------------------------------------------------------------
# (c) the hook

def test_hook_renders_every_workflows_options():
    hooks = load_hooks()
    shared, sweep = set(hooks.shared_option_names()), set(hooks.sweep_option_names())
    assert {"seed", "output_dir", "quiet"} <= shared
    assert {"executor", "jobs"} <= sweep
    for name in NAMES:
        command = WORKFLOWS.get(name)
        text = hooks.render_markers(page(name), prefix="../", where=name)
        assert "<!-- options:" not in text
        rendered = hooks.render_options(name, prefix="../")
        assert rendered.startswith("| option | type | default | meaning |")
        for param in command.params:
            if param.name in shared or ("executor" in hooks._names(command)
                                        and param.name in sweep):
                assert f"`{param.opts[0]}`" in rendered.split("\n\n")[-1], (name, param.name)
            else:
                row = next(line for line in rendered.splitlines()
                           if line.startswith(f"| `{param.opts[0]}`"))
                assert row.count(" | ") >= 3, row
    for kind in ("shared", "sweep"):
        table = hooks.render_markers(f"<!-- {kind}-options -->", where=kind)
        assert table.startswith("| option |") and "`--" in table
    assert "`RUN_DIR`" in hooks.render_options("collect")
