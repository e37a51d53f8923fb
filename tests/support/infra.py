"""Readers for the infrastructure files, shared by the tests under tests/infra."""
from __future__ import annotations

import dataclasses
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


# --- what a template deploys for given parameters -------------------------------
#
# A deliberately small evaluator for the expressions that decide *whether*
# something is deployed: literals, parameters and variables, ==, !=, !, &&, ||,
# empty() and ternaries. Anything it cannot decide statically (resource
# properties, module outputs, function calls other than empty) is UNKNOWN, and a
# condition that evaluates to UNKNOWN counts as "may be deployed", so a test that
# asks "is X absent?" cannot pass by accident.

UNKNOWN = type("Unknown", (), {"__repr__": lambda self: "UNKNOWN"})()


class Interpolated:
    """A string with ${...} parts: its value is unknown, but not always its emptiness."""

    def __init__(self, has_literal_text: bool):
        self.nonempty = has_literal_text

    def __repr__(self):
        return "Interpolated(nonempty)" if self.nonempty else "Interpolated(?)"


def _declarations(root) -> dict:
    found = {}
    for decl in root.named_children:
        if decl.type in ("variable_declaration", "parameter_declaration"):
            name = next(c for c in decl.named_children if c.type == "identifier").text.decode()
            has_value = any(not c.is_named and c.type == "=" for c in decl.children)
            found[name] = (decl.type, decl.named_children[-1] if has_value else None)
    return found


class BicepScope:
    """Parameters (given or defaulted) and variables of one Bicep file."""

    def __init__(self, root, params: dict | None = None):
        self.root = root
        self.params = dict(params or {})
        self.declared = _declarations(root)
        self._evaluating: set[str] = set()

    def lookup(self, name: str):
        if name in self.params:
            return self.params[name]
        kind, node = self.declared.get(name, (None, None))
        if node is None or name in self._evaluating:
            return UNKNOWN
        self._evaluating.add(name)
        try:
            return self.evaluate(node)
        finally:
            self._evaluating.discard(name)

    def evaluate(self, node):
        kind = node.type
        if kind == "string":
            parts = node.named_children
            if all(p.type == "string_content" for p in parts):
                return "".join(p.text.decode() for p in parts)
            return Interpolated(any(p.type == "string_content" and p.text for p in parts))
        if kind == "boolean":
            return node.text == b"true"
        if kind == "number":
            return int(node.text)
        if kind == "identifier":
            return self.lookup(node.text.decode())
        if kind == "parenthesized_expression":
            return self.evaluate(node.named_children[0])
        if kind == "unary_expression":
            value = self.evaluate(node.named_children[0])
            return (not value) if isinstance(value, bool) else UNKNOWN
        if kind == "binary_expression":
            return self._binary(node)
        if kind == "ternary_expression":
            condition = self.evaluate(node.child_by_field_name("condition"))
            if isinstance(condition, bool):
                return self.evaluate(node.child_by_field_name("consequence" if condition else "alternative"))
            return UNKNOWN
        if kind == "call_expression" and node.child_by_field_name("function").text == b"empty":
            args = node.child_by_field_name("arguments").named_children
            value = self.evaluate(args[0]) if len(args) == 1 else UNKNOWN
            if isinstance(value, (str, list, dict)):
                return len(value) == 0
            if isinstance(value, Interpolated) and value.nonempty:
                return False
            return UNKNOWN
        if kind == "object":
            return {"<object>": node}
        return UNKNOWN

    def _binary(self, node):
        operator = next(c.type for c in node.children if not c.is_named)
        left, right = node.named_children[0], node.named_children[-1]
        if operator in ("&&", "||"):
            first = self.evaluate(left)
            decisive = operator == "||"
            if first is decisive:
                return decisive
            second = self.evaluate(right)
            if second is decisive:
                return decisive
            if isinstance(first, bool) and isinstance(second, bool):
                return not decisive
            return UNKNOWN
        if operator in ("==", "!="):
            a, b = self.evaluate(left), self.evaluate(right)
            if isinstance(a, (str, bool, int)) and isinstance(b, (str, bool, int)):
                return (a == b) if operator == "==" else (a != b)
            return UNKNOWN
        return UNKNOWN

    def condition_of(self, decl):
        """True, False or UNKNOWN for a resource or module declaration."""
        body = decl.named_children[-1]
        if body.type == "for_statement":
            # [for x in list: if (...) {...}]: the guard sits inside the loop.
            body = body.named_children[-1]
        guard = body if body.type == "if_statement" else None
        if guard is None:
            return True
        return self.evaluate(guard.named_children[0])


def declaration_body(decl):
    """The object literal of a resource or module, under its `if (...)` when it has one."""
    last = decl.named_children[-1]
    if last.type == "for_statement":
        last = last.named_children[-1]
    if last.type == "if_statement":
        last = last.named_children[-1]
    return last if last.type == "object" else None


def declaration_type(decl) -> str:
    return next(c for c in decl.named_children if c.type == "string").text.decode().strip("'")


def is_existing(decl) -> bool:
    return any(not c.is_named and c.type == "existing" for c in decl.children)


def object_property(obj, name: str):
    for prop in obj.named_children:
        if prop.type == "object_property" and prop.named_children[0].type == "identifier" \
                and prop.named_children[0].text.decode() == name:
            return prop.named_children[-1]
    return None


def _nested_resources(body):
    for prop in body.named_children:
        if prop.type == "object_property" and prop.named_children[0].type == "resource_declaration":
            yield prop.named_children[0]


@dataclasses.dataclass(frozen=True)
class Deployed:
    file: str          # relative to the repository root
    symbol: str        # the Bicep symbol of the resource or module
    type: str          # full resource type without API version, or "module:<path>"
    deploys: object    # True, or UNKNOWN when only the deployment can tell
    node: object       # the declaration's syntax node
    scope: BicepScope  # parameters and variables of its file, for the same choice


def deployment(path: Path, params: dict | None = None, deployed=True, _trail=()):
    """Every resource a template deploys, following modules, for the given parameters.

    Yields a Deployed for each resource and module; those whose condition is
    False, and `existing` references, are left out. Module parameters are
    evaluated in the calling file, so a choice made in main.bicep reaches the
    modules.
    """
    root = parse_bicep(path)
    scope = BicepScope(root, params)
    relative = path.relative_to(ROOT).as_posix()

    def combine(a, b):
        if a is False or b is False:
            return False
        return True if (a is True and b is True) else UNKNOWN

    def resources(decl, parent_type, parent_deploys):
        own = declaration_type(decl).split("@")[0]
        full = f"{parent_type}/{own}" if parent_type else own
        deploys = combine(parent_deploys, scope.condition_of(decl))
        if deploys is False or is_existing(decl):
            return
        yield Deployed(relative, decl.named_children[0].text.decode(), full, deploys, decl, scope)
        body = declaration_body(decl)
        if body is not None:
            for child in _nested_resources(body):
                yield from resources(child, full, deploys)

    for decl in root.named_children:
        if decl.type == "resource_declaration":
            yield from resources(decl, "", deployed)
        elif decl.type == "module_declaration":
            deploys = combine(deployed, scope.condition_of(decl))
            if deploys is False:
                continue
            target = (path.parent / declaration_type(decl)).resolve()
            body = declaration_body(decl)
            given = object_property(body, "params") if body is not None else None
            child_params = {}
            if given is not None:
                for prop in given.named_children:
                    if prop.type == "object_property":
                        child_params[prop.named_children[0].text.decode()] = scope.evaluate(prop.named_children[-1])
            assert target not in _trail, f"module cycle through {target}"
            yield Deployed(relative, decl.named_children[0].text.decode(),
                           f"module:{target.relative_to(ROOT).as_posix()}", deploys, decl, scope)
            yield from deployment(target, child_params, deploys, _trail + (path,))
