"""Importing initlab.data must stay cheap: torchvision and scikit-learn load only when data does."""

import ast
from pathlib import Path

import pytest

import initlab.data

LAZY = {"torchvision", "sklearn"}
MODULES = sorted(Path(initlab.data.__file__).parent.glob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_no_heavy_import_at_module_level(path: Path):
    tree = ast.parse(path.read_text())
    top_level = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    names = [alias.name for node in top_level if isinstance(node, ast.Import) for alias in node.names]
    names += [node.module for node in top_level if isinstance(node, ast.ImportFrom) and node.module]
    assert not {name.split(".")[0] for name in names} & LAZY
