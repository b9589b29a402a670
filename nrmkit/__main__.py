"""``python -m nrmkit WORKFLOW …``: the umbrella command without installed console scripts."""

from nrmkit.cli.main import cli

if __name__ == "__main__":
    cli(prog_name="nrmkit")
