"""Entry point of the `train` command: imports every command module so it registers."""

from __future__ import annotations

from db import CatalogError

from .app import app, fail
from . import commands_train  # noqa: F401  (registers dcgan, wgan-gp, cgan, acgan, sample, animate)
from . import commands_eval  # noqa: F401  (registers judge, eval, compare)
from . import commands_experiment  # noqa: F401  (registers experiment, runs)


def main() -> None:
    try:
        app()
    except CatalogError as e:
        fail(str(e))


if __name__ == "__main__":
    main()
