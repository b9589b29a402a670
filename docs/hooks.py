"""MkDocs hook: the option tables of the documentation are rendered from the click commands.

A page states where a table goes with a marker on a line of its own:

* ``<!-- options: NAME -->`` — the options of the workflow ``NAME`` (looked up in
  :data:`nrmkit.core.registry.WORKFLOWS`) or of the ``nrmkit`` subcommand ``NAME`` (such as
  ``collect``), without the options every workflow takes and the sweep options, which are
  named in one line that links to the page on run folders;
* ``<!-- shared-options -->`` — the options every registered workflow takes;
* ``<!-- sweep-options -->`` — the options every sweep workflow (one with ``--executor``)
  takes;
* ``<!-- readme -->`` — the README (the home page), its links into ``docs/`` made relative
  to the site.

Names, types, defaults and help texts come from the commands' ``params``, so the pages cannot
drift from the command line. Commands are reached through the registry and the ``nrmkit``
console script only, never through a module path.
"""

from __future__ import annotations

import importlib
import re
import sys
from functools import cache
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
#: the page the one-line summary of shared and sweep options links to (from docs/).
RUNS_PAGE = "runs.md"
MARKER = re.compile(r"^<!--\s*(options:\s*(?P<name>[\w-]+)|(?P<kind>shared|sweep)-options)\s*-->"
                    r"[ \t]*$", re.MULTILINE)


@cache
def workflows() -> dict[str, click.Command]:
    """Every registered workflow's click command, in registration order."""
    from nrmkit.core.registry import WORKFLOWS

    return {name: WORKFLOWS.get(name) for name in WORKFLOWS.names()}


@cache
def umbrella() -> click.Group:
    """The ``nrmkit`` group, as ``[project.scripts]`` of pyproject.toml declares it."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, attribute = scripts["nrmkit"].partition(":")
    return getattr(importlib.import_module(module), attribute)


def command(name: str) -> click.Command:
    """A workflow, or else a subcommand of ``nrmkit`` (KeyError naming both if neither)."""
    if name in workflows():
        return workflows()[name]
    group = umbrella()
    context = click.Context(group)
    sub = group.get_command(context, name) or group.get_command(context, name.replace("_", "-"))
    if sub is None:
        raise KeyError(f"{name!r} is neither a registered workflow nor an nrmkit subcommand")
    return sub


def _names(cmd: click.Command) -> list[str]:
    return [p.name for p in cmd.params if isinstance(p, click.Option)]


@cache
def shared_option_names() -> tuple[str, ...]:
    """Options (parameter names) every registered workflow takes, in declaration order."""
    every = [set(_names(c)) for c in workflows().values()]
    common = set.intersection(*every) if every else set()
    first = next(iter(workflows().values()))
    return tuple(n for n in _names(first) if n in common)


@cache
def sweep_option_names() -> tuple[str, ...]:
    """Options every sweep workflow (one with ``--executor``) takes beyond the shared ones."""
    sweeps = [c for c in workflows().values() if "executor" in _names(c)]
    if not sweeps:
        return ()
    common = set.intersection(*[set(_names(c)) for c in sweeps]) - set(shared_option_names())
    return tuple(n for n in _names(sweeps[0]) if n in common)


def _escape(text: str) -> str:
    """One line of table text: HTML specials escaped, ``|`` escaped outside code spans
    (inside them the table parser leaves it alone)."""
    text = " ".join(str(text).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    pieces = text.split("`")
    return "`".join(p if i % 2 else p.replace("|", "\\|") for i, p in enumerate(pieces))


def _flags(param: click.Parameter) -> str:
    if isinstance(param, click.Argument):
        return f"`{param.human_readable_name.upper()}` (argument)"
    opts = list(param.opts)
    if param.secondary_opts:
        return ", ".join(f"`{o}`" for o in opts[:1]) + " / " + ", ".join(
            f"`{o}`" for o in param.secondary_opts)
    return ", ".join(f"`{o}`" for o in opts)


def _type(param: click.Parameter) -> str:
    kind = param.type
    if isinstance(kind, click.Choice):
        text = " \\| ".join(f"`{c}`" for c in kind.choices)
    elif isinstance(param, click.Option) and param.is_flag:
        text = "flag"
    elif isinstance(kind, click.types.BoolParamType):
        text = "boolean"
    elif isinstance(kind, (click.types.IntParamType, click.IntRange)):
        text = "integer"
    elif isinstance(kind, (click.types.FloatParamType, click.FloatRange)):
        text = "number"
    elif isinstance(kind, click.Path):
        text = "path"
    elif isinstance(kind, click.types.StringParamType):
        text = "text"
    else:
        text = _escape(kind.name)
    if param.nargs > 1:
        text = f"{param.nargs} × {text}"
    if getattr(param, "multiple", False):
        text += " (repeatable)"
    return text


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _default(param: click.Parameter) -> str:
    show = getattr(param, "show_default", None)
    if isinstance(show, str):
        return _escape(show)
    if param.required:
        return "required"
    value = param.default
    if value is None or type(value).__name__ == "Sentinel" or callable(value):
        return "—"
    if isinstance(param, click.Option) and param.is_flag and isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (tuple, list)):
        return " ".join(f"`{_value(v)}`" for v in value) if value else "—"
    return f"`{_escape(_value(value))}`"


def options_table(params) -> str:
    """A markdown table: option | type | default | meaning."""
    rows = ["| option | type | default | meaning |", "|---|---|---|---|"]
    for param in params:
        if getattr(param, "hidden", False):
            continue
        help_text = _escape(getattr(param, "help", None) or "")
        rows.append(f"| {_flags(param)} | {_type(param)} | {_default(param)} | {help_text} |")
    return "\n".join(rows)


def _flag_list(cmd: click.Command, names) -> str:
    params = {p.name: p for p in cmd.params}
    return ", ".join(f"`{params[n].opts[0]}`" for n in names if n in params)


def render_options(name: str, *, prefix: str = "") -> str:
    """The options of ``name`` as markdown: its own options in a table, then one line naming
    the shared and sweep options it also takes (``prefix`` leads from the page to docs/)."""
    cmd = command(name)
    is_workflow = name in workflows()
    hide = set(shared_option_names()) if is_workflow else set()
    sweep = "executor" in _names(cmd) and is_workflow
    if sweep:
        hide |= set(sweep_option_names())
    own = [p for p in cmd.params if p.name not in hide]
    parts = [options_table(own)]
    if is_workflow:
        line = (f"Also the options every workflow takes ({_flag_list(cmd, shared_option_names())}:"
                f" [run folders]({prefix}{RUNS_PAGE}#options-every-workflow-takes))")
        if sweep:
            line += (f" and the sweep options ({_flag_list(cmd, sweep_option_names())}:"
                     f" [sweeps]({prefix}{RUNS_PAGE}#sweep-options))")
        parts.append(line + ".")
    return "\n\n".join(parts)


def render_shared_options() -> str:
    first = next(iter(workflows().values()))
    return options_table([p for p in first.params if p.name in shared_option_names()])


def render_sweep_options() -> str:
    sweeps = [c for c in workflows().values() if "executor" in _names(c)]
    names = sweep_option_names()
    return options_table([p for p in sweeps[0].params if p.name in names]) if sweeps else ""


def render_markers(markdown: str, *, prefix: str = "", where: str = "a page") -> str:
    """Replace every marker in ``markdown`` (see the module docstring)."""
    def replace(match: re.Match) -> str:
        if match.group("kind") == "shared":
            return render_shared_options()
        if match.group("kind") == "sweep":
            return render_sweep_options()
        try:
            return render_options(match.group("name"), prefix=prefix)
        except KeyError as error:
            from mkdocs.exceptions import PluginError

            raise PluginError(f"{where}: {error.args[0]}") from None

    return MARKER.sub(replace, markdown)


def readme() -> str:
    """README.md as a page of the site: links into ``docs/`` point at the pages; a link to a
    folder of ``docs/`` (a listing on a code host) becomes plain text."""
    text = (ROOT / "README.md").read_text()
    text = re.sub(r"\[([^\]]+)\]\(docs/[^)]*/\)", r"\1", text)
    return text.replace("](docs/", "](")


def on_page_markdown(markdown: str, page, config, files, **kwargs) -> str:
    src = page.file.src_uri
    prefix = "../" * src.count("/")
    markdown = markdown.replace("<!-- readme -->", readme())
    return render_markers(markdown, prefix=prefix, where=src)
