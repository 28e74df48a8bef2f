"""``python -m initlab.lr_find``: see :mod:`initlab.cli.lr_find`."""

from initlab.cli.lr_find import main

if __name__ == "__main__":
    main()
