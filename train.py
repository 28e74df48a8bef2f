"""Train a model: ``python train.py init=spectral optim=adam`` (sweep: ``python train.py -m init=xavier_normal,spectral``).

Config groups live in conf/; see README.md for every option.
"""

from initlab.cli.train import main

if __name__ == "__main__":
    main()
