"""devhost.pytest_plugin, as an app's project uses it: the README's example, pasted into a
project beside the app it describes, passes under pytest."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

from .conftest import APPS
from .helpers import REPO

README = REPO / "README.md"
SECTION = "**Testing an app on the devhost.**"
# Proxy settings of the environment would send the example's requests to 127.0.0.1 elsewhere.
PROXY_VARIABLES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


def readme_example_files() -> dict[str, str]:
    """The files of the README's example: its Python block, cut at each ``# <file>.py`` line."""
    text = README.read_text(encoding="utf-8")
    block = re.search(r"^```python\n(.*?)^```", text[text.index(SECTION):], flags=re.M | re.S).group(1)
    parts = re.split(r"^# (\S+\.py)\n", block, flags=re.M)
    return {name: body.strip() + "\n" for name, body in zip(parts[1::2], parts[2::2])}


def test_the_readme_example_passes_beside_the_app_it_describes(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(APPS / "approval", project, ignore=shutil.ignore_patterns("__pycache__"))
    files = readme_example_files()
    assert sorted(files) == ["conftest.py", "test_approval.py"]
    for name, text in files.items():
        (project / name).write_text(text, encoding="utf-8")
    env = {name: value for name, value in os.environ.items() if name not in PROXY_VARIABLES}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    assert not (project / ".devhost").exists()  # the state lived in the tests' tmp_path
