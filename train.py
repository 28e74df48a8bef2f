"""Train a model: ``python train.py init=spectral optim=adam`` (sweep: ``python train.py -m init=xavier_normal,spectral``).

Config groups live in conf/; see README.md for every option.
"""

try:
    from initlab.cli.train import main
except KeyboardInterrupt:  # Ctrl-C while Python imports: nothing started, nothing to record; no traceback
    raise SystemExit(130) from None

if __name__ == "__main__":
    main()
