#!/usr/bin/env python3
"""Build the Teams app package to upload (Teams admin center, or "Upload a custom app"):
manifest.json plus its two icons, zipped.

    python3 scripts/teams_manifest.py --app-id "$(azd env get-value AZURE_BOT_APP_ID)" \\
        --host "$(azd env get-value AZURE_FUNCTION_URL)" --out teams-app.zip

The bot is the app's managed identity (its client id is the bot's app id); the app is
personal-scope only, which is where review cards go. Needs nothing but Python.
"""
from __future__ import annotations

import argparse
import json
import re
import struct
import sys
import uuid
import zipfile
import zlib
from urllib.parse import urlsplit

MANIFEST_SCHEMA = "https://developer.microsoft.com/en-us/json-schemas/teams/v1.17/MicrosoftTeams.schema.json"
MANIFEST_VERSION = "1.17"
APP_VERSION = "1.0.0"
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# The app's colour and the outline icon's white, as Teams asks for them (192 px colour,
# 32 px white on transparent).
ACCENT = (0x1F, 0x5F, 0xA8)


def manifest(app_id: str, host: str, name: str) -> dict:
    # The Teams app's own id is derived from the bot's, so a rebuilt package updates the
    # same app rather than adding another.
    package_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"teams-app:{app_id}"))
    return {
        "$schema": MANIFEST_SCHEMA, "manifestVersion": MANIFEST_VERSION, "version": APP_VERSION,
        "id": package_id, "developer": {"name": name, "websiteUrl": f"https://{host}", "privacyUrl": f"https://{host}",
                                        "termsOfUseUrl": f"https://{host}"},
        "name": {"short": name[:30], "full": f"{name}: decide drafts in Teams"[:100]},
        "description": {"short": "Approve or reject drafts waiting for your review.",
                        "full": "Review cards for the drafts that wait for you, with Approve, Reject (with feedback) "
                                "and Open; each card shows who decided once the stage is decided."},
        "icons": {"color": "color.png", "outline": "outline.png"}, "accentColor": "#%02X%02X%02X" % ACCENT,
        "bots": [{"botId": app_id, "scopes": ["personal"], "supportsFiles": False, "isNotificationOnly": False}],
        "permissions": ["identity"], "validDomains": [host],
    }


def png(size: int, rgba) -> bytes:
    """A square PNG of one colour (``rgba`` per pixel from (x, y))."""
    rows = b"".join(b"\x00" + b"".join(bytes(rgba(x, y)) for x in range(size)) for y in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def icons() -> dict[str, bytes]:
    color = png(192, lambda x, y: (*ACCENT, 255))
    # A white check mark on transparency for the outline icon.
    outline = png(32, lambda x, y: (255, 255, 255, 255) if (abs(y - (x + 12)) <= 1 and 6 <= x <= 12)
                  or (abs(y - (36 - x)) <= 1 and 12 <= x <= 26) else (0, 0, 0, 0))
    return {"color.png": color, "outline.png": outline}


def build(app_id: str, url: str, out: str, name: str = "Content review") -> dict:
    if not GUID.match(app_id):
        raise SystemExit(f"--app-id must be the bot's app id (a GUID), got {app_id!r}")
    host = urlsplit(url if "://" in url else f"https://{url}").hostname
    if not host:
        raise SystemExit(f"--host must be the function app's URL or host name, got {url!r}")
    content = manifest(app_id, host, name)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("manifest.json", json.dumps(content, indent=2))
        for file_name, data in icons().items():
            package.writestr(file_name, data)
    return content


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app-id", required=True, help="the bot's app id: the managed identity's client id")
    parser.add_argument("--host", required=True, help="the function app's URL or host name")
    parser.add_argument("--out", default="teams-app.zip")
    parser.add_argument("--name", default="Content review")
    args = parser.parse_args(argv)
    build(args.app_id, args.host, args.out, args.name)
    print(f"wrote {args.out}: upload it in Teams (Apps, Manage your apps, Upload an app)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
