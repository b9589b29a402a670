"""The umbrella ``nrmkit`` command: every workflow as a subcommand.

Subcommands are looked up in the workflow registry and imported only when invoked, so
``nrmkit --help`` stays instant.
"""

from __future__ import annotations

import click

from nrmkit import __version__
from nrmkit.cli.options import Group
from nrmkit.core.registry import WORKFLOW_SUMMARIES, WORKFLOWS


class WorkflowGroup(Group):
    """A group whose commands come lazily from :data:`nrmkit.core.registry.WORKFLOWS`."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*WORKFLOWS.names(), "collect"])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        normalized = name.replace("-", "_")
        if normalized == "collect":
            from nrmkit.cli.collect import collect

            return collect
        if normalized not in WORKFLOWS:
            return None
        return WORKFLOWS.get(normalized)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _summary(name)) for name in self.list_commands(ctx)]
        with formatter.section("Workflows"):
            formatter.write_dl(rows)


def _summary(name: str) -> str:
    if name == "collect":
        return "Aggregate the parts of an array-task sweep into results.json."
    return WORKFLOW_SUMMARIES.get(name, "")


@click.group(cls=WorkflowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nrmkit")
def cli() -> None:
    """nrmkit: recurrent neural networks with biological features.

    Every workflow is also a console script of its own (e.g. `transition_2_chaos`).
    Run `nrmkit WORKFLOW --help` for its options.
    """
