"""Every Bicep file under infra/ parses.

The Bicep CLI cannot be installed here (it downloads a binary), so this uses the
tree-sitter Bicep grammar from PyPI. It catches syntax errors (unbalanced
braces, a property without a value, a stray token), not type errors or unknown
resource properties: those still need `az bicep build` or `azd provision`.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.infra import INFRA, ROOT, bicep_parser


EXPECTED_FILES = [
    "main.bicep",
    "app/functionapp.bicep",
    "core/durabletask.bicep",
    "core/identity.bicep",
    "core/keyvault.bicep",
    "core/monitoring.bicep",
    "core/openai.bicep",
    "core/roles.bicep",
    "core/storage.bicep",
]


def first_problem(node):
    """The first ERROR or MISSING node below ``node``, or None."""
    if node.type == "ERROR" or node.is_missing:
        return node
    for child in node.children:
        if child.has_error or child.is_missing or child.type == "ERROR":
            found = first_problem(child)
            if found is not None:
                return found
    return None


def describe_problem(source: bytes, node) -> str:
    row, column = node.start_point
    line = source.splitlines()[row].decode("utf-8", "replace") if source else ""
    kind = f"missing {node.type}" if node.is_missing else "unexpected syntax"
    return f"line {row + 1}, column {column + 1}: {kind}\n    {line}\n    {' ' * column}^"


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def test_infra_has_the_expected_modules():
    found = {p.relative_to(INFRA).as_posix() for p in bicep_files()}
    missing = sorted(set(EXPECTED_FILES) - found)
    assert not missing, f"missing Bicep modules: {missing}"


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_bicep_file_parses_without_errors(path: Path):
    source = path.read_bytes()
    assert source.strip(), f"{path} is empty"
    tree = bicep_parser().parse(source)
    if tree.root_node.has_error:
        problem = first_problem(tree.root_node) or tree.root_node
        pytest.fail(f"{path.relative_to(ROOT)} has a syntax error at "
                    f"{describe_problem(source, problem)}")


def infra_json_files() -> list[Path]:
    return sorted(INFRA.rglob("*.json"))


def test_infra_has_the_expected_json_files():
    found = {p.relative_to(INFRA).as_posix() for p in infra_json_files()}
    assert {"main.parameters.json", "host.dts.json"} <= found


@pytest.mark.parametrize("path", infra_json_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_infra_json_file_parses(path: Path):
    # Strict JSON, as the Functions host and ARM read it: no comments, no trailing commas.
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        pytest.fail(f"{path.relative_to(ROOT)} is not valid JSON: {exc}")


VALID_SNIPPET = b"""\
targetScope = 'subscription'

@secure()
param key string = newGuid()

module m 'core/x.bicep' = if (!empty(key)) {
  name: 'm'
  params: {
    values: [
      'a'
      'b'
    ]
  }
}

output url string = 'https://${m!.outputs.host}'

resource parent 'Microsoft.DurableTask/schedulers@2025-11-01' existing = if (!empty(key)) {
  name: 'p'

  resource child 'taskHubs' existing = {
    name: 'c'
  }
}

var childId = parent::child.id
"""

BROKEN_SNIPPETS = {
    "unclosed object": b"resource s 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n  name: 'x'\n",
    "property without value": b"var settings = {\n  HITL_WRITER:\n}\n",
    "stray token": b"param location string = = 'westeurope'\n",
    "unterminated string": b"var name = 'func-${token}\n",
    "unbalanced call": b"var id = guid(subscription().id, 'x'\n",
}


def test_the_parser_accepts_valid_bicep():
    # Control for the test below: without it, a parser that flagged everything
    # would make the broken-snippet test pass for the wrong reason.
    assert not bicep_parser().parse(VALID_SNIPPET).root_node.has_error


@pytest.mark.parametrize("snippet", BROKEN_SNIPPETS.values(), ids=list(BROKEN_SNIPPETS))
def test_the_parser_reports_broken_bicep(snippet: bytes):
    tree = bicep_parser().parse(snippet)
    assert tree.root_node.has_error
    assert first_problem(tree.root_node) is not None
