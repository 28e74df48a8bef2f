"""Where initlab finds its configs and where runs write, whatever the install.

The single source of truth for paths. Configs: ``./conf`` of the working directory when it holds
``train.yaml`` (a checkout, a DVC experiment copy: they run their own configs), else the configs
shipped inside the installed package (``initlab/conf``), else those of the source checkout this
package was imported from (an editable install). Runs write ``data/`` and ``logs/`` under
``PROJECT_ROOT``, the working directory, whichever configs are in use: a ``pip install``-ed initlab
never writes into site-packages, an editable one never into its checkout when run from elsewhere.
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# The file that marks a folder as initlab's config directory.
ROOT_CONFIG = "train.yaml"


def find_config_dir(cwd: Path) -> Path:
    """The first of ``cwd/conf``, the packaged configs and the source checkout's that holds ``train.yaml``."""
    candidates = (cwd / "conf", PACKAGE_DIR / "conf", PACKAGE_DIR.parents[1] / "conf")
    return next((c.resolve() for c in candidates if (c / ROOT_CONFIG).is_file()), candidates[1])


CONFIG_DIR = find_config_dir(Path.cwd())
PROJECT_ROOT = Path.cwd().resolve()
