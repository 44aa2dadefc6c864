"""Entry point of the `train` command: imports every command module so it registers."""

from __future__ import annotations

from db import CatalogError

from train.app import app, fail
from train.commands import train as commands_train  # noqa: F401  (registers dcgan, wgan-gp, cgan, acgan, sample, animate)
from train.commands import eval as commands_eval  # noqa: F401  (registers judge, eval, compare)
from train.commands import experiment as commands_experiment  # noqa: F401  (registers experiment, runs)


def main() -> None:
    try:
        app()
    except CatalogError as e:
        fail(str(e))


if __name__ == "__main__":
    main()
