"""Entry point of the `curate` command: a table of which module registers each command, so a run
imports only the module of the command invoked (curate.conventions.load_lazily).

`from curate.cli import app` gives the app with every command loaded (tests walk it that way).
"""

from __future__ import annotations

from db import CatalogError

from curate import app as _app
from curate.conventions import app_with_every_command, fail, load_lazily

COMMANDS = {   # in the order `curate --help` lists them
    "split": "curate.commands.catalog",
    "stats": "curate.commands.catalog",
    "export": "curate.commands.export",
    "crop": "curate.commands.crop",
    "import": "curate.commands.crop",
    "sketch": "curate.commands.sketch",
    "tag": "curate.commands.tag",
    "calibrate-colors": "curate.commands.colors",
    "agree": "curate.commands.quality",
    "suspects": "curate.commands.quality",
    "consensus": "curate.commands.consensus", "annotators": "curate.commands.consensus",
    "show": "curate.commands.show",
    "labels": "curate.commands.catalog",
    "vocab": "curate.commands.catalog",
    "i2v": "curate.commands.tag",
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
