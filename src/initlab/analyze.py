"""``python -m initlab.analyze``: see :mod:`initlab.cli.analyze`."""

from initlab.cli.analyze import main

if __name__ == "__main__":
    main()
