"""The app's HTML pages: one stylesheet, a strict Content-Security-Policy, and error pages
that look like the rest.

Templates carry three placeholders: ``{{NONCE}}`` (the script and style nonce of this
reply), ``{{STYLE}}`` (page_style.css) and ``{{PAGE_COMMON}}`` (page_common.js, the
scripts' shared helpers). Nothing a request or a review holds is put into a
template: pages load their data as JSON and show it as text.
"""
from __future__ import annotations

import secrets
from html import escape
from pathlib import Path

import azure.functions as func

STYLE = (Path(__file__).parent / "page_style.css").read_text(encoding="utf-8")
PAGE_COMMON = (Path(__file__).parent / "page_common.js").read_text(encoding="utf-8")
NO_STORE = {"Cache-Control": "no-store"}
ERROR_TITLES = {400: "Bad request", 401: "Sign in first", 403: "Not allowed",
                404: "Review not found", 503: "Not available right now"}
ERROR_HINTS = {403: "Ask the review's owner for a fresh link.",
               401: "Sign in with your work account, then open the link again.",
               503: "Try again in a minute; if it persists, tell the app's owner."}


def page(template: str, status: int = 200) -> func.HttpResponse:
    nonce = secrets.token_urlsafe(16)
    body = template.replace("{{STYLE}}", STYLE).replace("{{PAGE_COMMON}}", PAGE_COMMON).replace("{{NONCE}}", nonce)
    return func.HttpResponse(body, status_code=status, mimetype="text/html", charset="utf-8",
                             headers=security_headers(nonce))


def error_page(status: int, reason: str, title: str = "") -> func.HttpResponse:
    title = title or ERROR_TITLES.get(status, "Something went wrong")
    hint = ERROR_HINTS.get(status, "")
    template = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                f"<title>{status} {escape(title)}</title><style nonce=\"{{{{NONCE}}}}\">{{{{STYLE}}}}</style>"
                f"</head><body><main><section class=\"card error-card\"><p class=\"code\">{status}</p>"
                f"<h1>{escape(title)}</h1><p id=\"reason\">{escape(reason)}</p>"
                + (f"<p class=\"hint\">{escape(hint)}</p>" if hint else "")
                + "</section></main></body></html>")
    return page(template, status)


def security_headers(nonce: str) -> dict:
    return {"Content-Security-Policy": f"default-src 'none'; script-src 'nonce-{nonce}'; "
                                       f"style-src 'nonce-{nonce}'; connect-src 'self'; base-uri 'none'; "
                                       "form-action 'none'; frame-ancestors 'none'",
            "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff", **NO_STORE}
