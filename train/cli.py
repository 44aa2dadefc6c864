"""Entry point of the `train` command: a table of which module registers each command, so a run
imports only the module of the command invoked (curate.conventions.load_lazily).

`import train.cli` then `train.app.app` runs any command (its module is imported when it is
looked up); `train.cli.app` is the app with every command module imported (what the tests walk).
"""

from __future__ import annotations

from db import CatalogError

from curate.conventions import app_with_every_command, fail, load_lazily
from train import app as _app

COMMANDS = {   # in the order `train --help` lists them
    "dcgan": "train.commands.train",
    "wgan-gp": "train.commands.train",
    "cgan": "train.commands.train",
    "acgan": "train.commands.train",
    "cgan-pd": "train.commands.train",
    "reacgan": "train.commands.train",
    "tacgan": "train.commands.train",
    "pix2pix": "train.commands.train",
    "sample": "train.commands.train",
    "animate": "train.commands.train",
    "judge": "train.commands.eval",
    "eval": "train.commands.eval",
    "compare": "train.commands.eval",
    "experiment": "train.commands.experiment",
    "runs": "train.commands.experiment",
}
load_lazily(_app.app, COMMANDS)

__getattr__ = app_with_every_command(_app.app, COMMANDS, __name__)


def main() -> None:
    try:
        _app.app()
    except CatalogError as e:
        fail(str(e))


if __name__ == "__main__":
    main()
