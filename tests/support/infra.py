"""Readers for the infrastructure files, shared by the tests under tests/infra."""
from __future__ import annotations

import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"


@functools.lru_cache(maxsize=1)
def bicep_parser():
    """tree-sitter's Bicep grammar: the Bicep CLI itself downloads a binary, so it is not used."""
    try:
        import tree_sitter
        import tree_sitter_bicep
    except ImportError as exc:  # pragma: no cover - environment problem
        pytest.fail(f"the Bicep checks need tree-sitter and tree-sitter-bicep "
                    f"(requirements-dev.txt): {exc}")
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_bicep.language()))


def parse_bicep(path: Path):
    tree = bicep_parser().parse(path.read_bytes())
    assert not tree.root_node.has_error, f"{path} does not parse; see test_infra_bicep_syntax"
    return tree.root_node


def load_yaml(path: Path):
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - environment problem
        pytest.fail(f"needs PyYAML (requirements-dev.txt): {exc}")
    return yaml.safe_load(path.read_text())
