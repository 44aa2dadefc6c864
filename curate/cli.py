"""Entry point of the `curate` command: imports every command module so it registers."""

from __future__ import annotations

from db import CatalogError

from curate.app import app, fail

# Each import registers its commands on `app`.
from curate.commands import catalog as commands_catalog  # noqa: F401,E402
from curate.commands import crop as commands_crop  # noqa: F401,E402
from curate.commands import sketch as commands_sketch  # noqa: F401,E402
from curate.commands import tag as commands_tag  # noqa: F401,E402
from curate.commands import quality as commands_quality  # noqa: F401,E402
from curate.commands import show as commands_show  # noqa: F401,E402


def main() -> None:
    try:
        app()
    except CatalogError as e:
        fail(str(e))


if __name__ == "__main__":
    main()
