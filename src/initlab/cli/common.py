"""What every Hydra app does around its task: print and save the config tree."""

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

TREE_ORDER = ("data", "model", "init", "optim", "sched", "trainer", "callbacks", "logger", "paths")


def print_config_tree(cfg: DictConfig, save_dir: str | Path | None = None) -> None:
    """Show the composed config as a rich tree (groups first) and keep a copy in the run dir."""
    import rich
    import rich.syntax
    import rich.tree

    tree = rich.tree.Tree("CONFIG", guide_style="dim")
    keys = [k for k in TREE_ORDER if k in cfg] + [k for k in cfg if k not in TREE_ORDER]
    for key in keys:
        node = cfg[key]
        text = OmegaConf.to_yaml(node, resolve=True) if isinstance(node, DictConfig) else str(node)
        tree.add(str(key)).add(rich.syntax.Syntax(text, "yaml"))
    rich.print(tree)
    if save_dir is not None:
        path = Path(save_dir) / "config_tree.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as handle:
            rich.print(tree, file=handle)
