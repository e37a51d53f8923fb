"""docs/ARCHITECTURE.md lists the devhost's modules as layers, each using only the ones
above it. Every import counts: at module level, inside a function, or for type checking
only. The package's ``__init__`` (the public face, which names ``DevHost``) is not a layer."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
DEVHOST = ROOT / "devhost"
LISTED = re.compile(r"^[├└]── (\w+)\.py\b")


def listed_modules() -> list[str]:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    layout = text.split("```\ndevhost/\n", 1)[1].split("```", 1)[0]
    return [match.group(1) for line in layout.splitlines() if (match := LISTED.match(line))]


def devhost_imports(module: str) -> set[str]:
    """The devhost modules that ``module`` imports."""
    return imported_modules((DEVHOST / f"{module}.py").read_text(encoding="utf-8")) - {module}


def imported_modules(source: str) -> set[str]:
    """The devhost modules a module's source imports, in any form."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            absolute = node.level == 0 and (node.module or "").split(".")[0] == "devhost"
            if node.level == 1 or absolute:
                path = (node.module or "").split(".")[1 if absolute else 0:]
                found.update([path[0]] if path and path[0] else [alias.name for alias in node.names])
        elif isinstance(node, ast.Import):
            found.update(name.split(".")[1] for name in (alias.name for alias in node.names)
                         if name.startswith("devhost."))
    return found


def test_every_devhost_module_is_listed_once():
    listed = listed_modules()
    assert len(listed) == len(set(listed))
    assert set(listed) == {p.stem for p in DEVHOST.glob("*.py")} - {"__init__"}


def test_each_module_imports_only_the_modules_above_it():
    listed = listed_modules()
    reaching_down = {module: sorted(devhost_imports(module) & set(listed[index:]))
                     for index, module in enumerate(listed)}
    assert {m: below for m, below in reaching_down.items() if below} == {}


def test_the_import_reader_sees_every_form_of_import():
    # Guards the test above: an import it failed to read would let a reach-down pass.
    source = ("from . import a, b\nfrom .c import x\nimport devhost.d\nfrom devhost.e import y\n"
              "from devhost import f\nimport json\nfrom azure import functions\n"
              "if TYPE_CHECKING:\n    from .g import Z\ndef later():\n    from .h import w\n")
    assert imported_modules(source) == {"a", "b", "c", "d", "e", "f", "g", "h"}
