"""The Teams app package: a manifest that names the bot (the app's managed identity) and
the app's host, and icons of the sizes Teams asks for."""
from __future__ import annotations

import json
import struct
import zipfile

import pytest

from scripts.teams_manifest import build, main

APP_ID = "6b7f3e1a-2c4d-4e5f-8a9b-0c1d2e3f4a5b"


def test_the_package_holds_a_manifest_for_the_bot_and_its_icons(tmp_path):
    out = tmp_path / "teams-app.zip"
    assert main(["--app-id", APP_ID, "--host", "https://func-abc.azurewebsites.net", "--out", str(out)]) == 0
    with zipfile.ZipFile(out) as package:
        assert sorted(package.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(package.read("manifest.json"))
        sizes = {name: struct.unpack(">II", package.read(name)[16:24]) for name in ("color.png", "outline.png")}
    assert manifest["bots"] == [{"botId": APP_ID, "scopes": ["personal"], "supportsFiles": False,
                                 "isNotificationOnly": False}]
    assert manifest["validDomains"] == ["func-abc.azurewebsites.net"]
    assert manifest["manifestVersion"] == "1.17" and manifest["id"] != APP_ID
    assert sizes == {"color.png": (192, 192), "outline.png": (32, 32)}
    # Rebuilt, the package keeps its id: Teams updates the app instead of adding another.
    assert build(APP_ID, "func-abc.azurewebsites.net", str(tmp_path / "again.zip"))["id"] == manifest["id"]


def test_a_bad_app_id_or_host_is_refused_with_the_reason(tmp_path):
    with pytest.raises(SystemExit, match="GUID"):
        build("not-a-guid", "func.azurewebsites.net", str(tmp_path / "x.zip"))
    with pytest.raises(SystemExit, match="host"):
        build(APP_ID, "https://", str(tmp_path / "x.zip"))
