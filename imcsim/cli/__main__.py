"""``python -m imcsim.cli``: the ``imcsim`` command."""

from imcsim.cli import main

__all__: list[str] = []

main()
