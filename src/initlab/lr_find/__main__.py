"""``python -m initlab.lr_find``: the entry point (:mod:`initlab.cli.lr_find`) runs the app body of :mod:`initlab.lr_find`."""

from initlab.cli.lr_find import main

main()
