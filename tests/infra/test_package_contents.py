"""What the function app package contains: .funcignore, applied as the tools apply it.

Two tools build the zip, and they read .funcignore differently:

* azd (`azd deploy`, `azd up`) uses gitignore syntax, and only drops
  __pycache__ and virtual environments by itself when there is no .funcignore
  (learn.microsoft.com/azure/developer/azure-developer-cli/service-packaging-ignore-files).
  Here git itself evaluates the patterns, with `git ls-files --others
  --exclude-from=.funcignore` in a scratch repository.
* Azure Functions Core Tools (`func azure functionapp publish`) uses its own
  GitIgnoreParser (src/Azure.Functions.Cli/Common/GitIgnoreParser.cs): each
  pattern becomes a regular expression anchored at the start of the path
  relative to the app root, `**` matches anything and `*` anything but a slash.
  It also always leaves out .git and .vscode folders and .funcignore,
  .gitignore, local.settings.json and project.lock.json files
  (FileSystemHelpers.GetLocalFiles). CoreToolsIgnore below follows that
  algorithm.

The input is the repository's tracked files (`git ls-files`) plus files that
exist only on a developer's machine (virtual environments, caches, local state),
which are on disk when azd packages the folder even though git ignores them.
"""
from __future__ import annotations

import functools
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.infra import ROOT

FUNCIGNORE = ROOT / ".funcignore"

# What the app imports or reads at run time: routes/review_routes.py reads
# routes/review_page.html when it is imported.
SHIPPED_FILES = {"function_app.py", "host.json", "requirements.txt", "routes/review_page.html"}
SHIPPED_PACKAGES = ("activities/", "channels/", "entities/", "orchestrations/", "routes/", "shared_code/")

EXCLUDED_FOLDERS = ("tests/", "bench/", "devhost/", "docs/", "infra/", "scripts/", ".github/", ".ci/")
EXCLUDED_FILES = {"Makefile", "requirements-dev.txt", "local.settings.sample.json", "demo.http",
                  "pytest.ini", "README.md", "azure.yaml", ".funcignore", ".gitignore"}

# On disk when azd packages a working copy, never tracked by git.
LOCAL_ONLY = [
    ".venv/pyvenv.cfg",
    ".venv/lib/python3.13/site-packages/azure/functions/__init__.py",
    "main_env/pyvenv.cfg",
    "__pycache__/function_app.cpython-313.pyc",
    "routes/__pycache__/hitl_routes.cpython-313.pyc",
    "shared_code/__pycache__/settings.cpython-313.pyc",
    "local.settings.json",
    ".devhost/hub.sqlite3",
    ".published/post.json",
    "test-artifacts/report.txt",
    ".pytest_cache/v/cache/nodeids",
    ".azure/hitl-dev/.env",
    ".azure/durable-backend/host.json",
    ".azurite/__azurite_db_blob__.json",
    "__azurite_db_queue__.json",
    "__blobstorage__/container/blob",
    "__queuestorage__/queue",
    "bench/results/run.json",
    ".vscode/settings.json",
    "node_modules/azurite/package.json",
]


def git(*args: str, cwd: Path = ROOT) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    result = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


@functools.lru_cache(maxsize=1)
def tracked_files() -> tuple[str, ...]:
    try:
        listed = git("ls-files", "-z")
    except (OSError, RuntimeError) as exc:
        pytest.skip(f"needs a git checkout: {exc}")
    # Tracked but deleted in the work tree would not be packaged either.
    return tuple(sorted(p for p in listed.split("\0") if p and (ROOT / p).is_file()))


def candidates() -> list[str]:
    return sorted(set(tracked_files()) | set(LOCAL_ONLY))


# --- azd: gitignore semantics, evaluated by git --------------------------------------

@functools.lru_cache(maxsize=1)
def azd_package(scratch: Path) -> frozenset[str]:
    for relative in candidates():
        path = scratch / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    git("init", "-q", cwd=scratch)
    listed = git("ls-files", "--others", "-z", f"--exclude-from={FUNCIGNORE}", cwd=scratch)
    return frozenset(p for p in listed.split("\0") if p)


@pytest.fixture(scope="module")
def azd_shipped(tmp_path_factory) -> frozenset[str]:
    return azd_package(tmp_path_factory.mktemp("azd-package"))


# --- Core Tools: its own matcher -------------------------------------------------------

class CoreToolsIgnore:
    """The .funcignore matcher of Azure Functions Core Tools, reimplemented."""

    ALWAYS_SKIPPED_FOLDERS = {".git", ".vscode"}
    ALWAYS_SKIPPED_FILES = {".funcignore", ".gitignore", "local.settings.json", "project.lock.json"}
    _SPECIAL = re.compile(r"[-\[\]/{}()+?.\\^$|]")

    def __init__(self, text: str):
        ignore, keep = [], []
        for raw in text.split("\n"):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            if negated:
                line = line[1:]
            if line.startswith("/"):
                line = line[1:]
            (keep if negated else ignore).append(self._translate(line))
        self._ignore = self._combine(ignore)
        self._keep = self._combine(keep)

    @classmethod
    def _translate(cls, pattern: str) -> str:
        escaped = cls._SPECIAL.sub(lambda m: "\\" + m.group(0), pattern)
        return escaped.replace("**", "(.+)").replace("*", "([^/]+)")

    @staticmethod
    def _combine(patterns: list[str]):
        if not patterns:
            return re.compile(r"$^")
        return re.compile("^((" + ")|(".join(sorted(patterns)) + "))")

    def ships(self, relative: str) -> bool:
        parts = relative.split("/")
        if any(part.lower() in self.ALWAYS_SKIPPED_FOLDERS for part in parts[:-1]):
            return False
        if parts[-1].lower() in self.ALWAYS_SKIPPED_FILES:
            return False
        return bool(self._keep.match(relative)) or not self._ignore.match(relative)


@pytest.fixture(scope="module")
def core_tools_shipped() -> frozenset[str]:
    matcher = CoreToolsIgnore(FUNCIGNORE.read_text(encoding="utf-8"))
    return frozenset(p for p in candidates() if matcher.ships(p))


TOOLS = ["azd", "core_tools"]


@pytest.fixture(params=TOOLS)
def shipped(request, azd_shipped, core_tools_shipped) -> frozenset[str]:
    return azd_shipped if request.param == "azd" else core_tools_shipped


# --- the rules ---------------------------------------------------------------------------

def test_the_app_and_its_packages_are_shipped(shipped):
    needed = set(SHIPPED_FILES)
    needed |= {p for p in tracked_files() if p.startswith(SHIPPED_PACKAGES)}
    missing = sorted(needed - shipped)
    assert not missing, f"the function app needs these but the package leaves them out: {missing}"
    for package in SHIPPED_PACKAGES:
        assert f"{package}__init__.py" in shipped


def test_the_review_page_template_is_shipped(shipped):
    # Imported routes read it at start-up; without it the whole app fails to load.
    assert "routes/review_page.html" in shipped


def test_development_files_are_left_out(shipped):
    leaked = sorted(p for p in shipped if p.startswith(EXCLUDED_FOLDERS) or p in EXCLUDED_FILES)
    assert not leaked, f"shipped but not needed at run time: {leaked}"


def test_local_state_is_left_out(shipped):
    leaked = sorted(set(LOCAL_ONLY) & shipped)
    assert not leaked, f"local files that would ship from a developer's working copy: {leaked}"


def test_nothing_else_is_shipped(shipped):
    allowed = {p for p in shipped if p in SHIPPED_FILES or p.startswith(SHIPPED_PACKAGES)}
    stray = sorted(shipped - allowed)
    assert not stray, (f"shipped files outside the app ({stray}): add them to .funcignore, "
                       f"or to SHIPPED_FILES here if the app needs them")


def test_both_tools_package_the_same_files(azd_shipped, core_tools_shipped):
    assert sorted(azd_shipped ^ core_tools_shipped) == [], (
        "azd and Core Tools read .funcignore differently; write patterns both understand")


def test_the_examples_in_the_brief_are_covered(azd_shipped, core_tools_shipped):
    for packaged in (azd_shipped, core_tools_shipped):
        for name in ("function_app.py", "host.json", "requirements.txt"):
            assert name in packaged
        for name in ("Makefile", "requirements-dev.txt", "local.settings.sample.json", "local.settings.json",
                     "demo.http", "pytest.ini", "README.md", "infra/host.dts.json"):
            assert name not in packaged


# --- the two matchers behave as the tools do ------------------------------------------------

def test_core_tools_patterns_are_anchored_at_the_app_root():
    # Why .funcignore lists __pycache__ and **/__pycache__: for Core Tools a
    # plain name only matches at the root, unlike gitignore.
    matcher = CoreToolsIgnore("__pycache__\n*.pyc\n")
    assert not matcher.ships("__pycache__/x.pyc")
    assert matcher.ships("routes/__pycache__/x.cpython-313.txt")
    assert CoreToolsIgnore("**/__pycache__\n").ships("__pycache__/x.txt")
    assert not CoreToolsIgnore("**/__pycache__\n").ships("routes/__pycache__/x.txt")


def test_core_tools_stars_need_at_least_one_character():
    matcher = CoreToolsIgnore("local.settings*.json\n.git*\n")
    assert not matcher.ships("local.settings.sample.json")
    # Not the pattern (the star needs a character) but the built-in list drops it.
    assert not matcher.ships("local.settings.json")
    assert not matcher.ships(".github/workflows/ci.yml")


def test_core_tools_negation_and_comments():
    matcher = CoreToolsIgnore("# comment\ndocs\n!docs/keep.md\n/infra\n")
    assert not matcher.ships("docs/DEPLOYMENT.md")
    assert matcher.ships("docs/keep.md")
    assert not matcher.ships("infra/main.bicep")
    assert matcher.ships("# comment")


def test_git_reads_the_patterns_with_gitignore_rules(tmp_path):
    (tmp_path / "rules").write_text("__pycache__\n")
    for relative in ("__pycache__/a.pyc", "routes/__pycache__/b.pyc", "routes/c.py"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).touch()
    git("init", "-q", cwd=tmp_path)
    listed = set(git("ls-files", "--others", "-z", f"--exclude-from={tmp_path / 'rules'}",
                     cwd=tmp_path).split("\0")) - {""}
    assert listed == {"routes/c.py", "rules"}
