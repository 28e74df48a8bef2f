"""``python -m initlab.train``: see :mod:`initlab.cli.train`."""

from initlab.cli.train import main

if __name__ == "__main__":
    main()
