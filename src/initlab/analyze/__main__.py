"""``python -m initlab.analyze``: the entry point (:mod:`initlab.cli.analyze`) runs the app body of :mod:`initlab.analyze`."""

from initlab.cli.analyze import main

main()
