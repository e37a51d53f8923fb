"""A page's signed links (the pending list, the inbox): the origin and the key are read once
a page, the origin only when a link is made, and the key is never shown."""
from __future__ import annotations

from datetime import datetime, timezone

import azure.functions as func
import pytest

from routes.http_helpers import HttpError
from routes.owner_routes import PageLinks
from shared_code.review_links import ReviewGrant, verify
from shared_code.settings import load_settings

KEY = "a-signing-key-only-this-test-knows-0123456789"
GRANT = ReviewGrant("review-1", 1, datetime(2030, 1, 1, tzinfo=timezone.utc))


def request(url: str) -> func.HttpRequest:
    return func.HttpRequest("GET", url, headers={}, body=b"")


def settings(**values):
    return load_settings({"WEBSITE_HOSTNAME": "localhost:7071", "HITL_REVIEW_SIGNING_KEY": KEY, **values})


def test_links_use_the_callers_origin_unless_a_public_base_url_is_set():
    link = PageLinks(request("http://127.0.0.1:8080/api/hitl/pending?top=5"), settings()).url(GRANT)
    assert link.startswith("http://127.0.0.1:8080/api/hitl/review/review-1?token=")
    assert verify(link.split("token=", 1)[1], "review-1", datetime(2029, 1, 1, tzinfo=timezone.utc),
                  KEY.encode()) == GRANT
    public = PageLinks(request("http://127.0.0.1:8080/api/hitl/pending"),
                       settings(HITL_PUBLIC_BASE_URL="https://reviews.contoso.com/")).url(GRANT)
    assert public.startswith("https://reviews.contoso.com/api/hitl/review/review-1?token=")


def test_a_page_without_links_never_reads_the_callers_origin():
    """A Host header urlsplit cannot read ("a]b", which aiohttp accepts) is refused with a
    400 only when a link is made from it: an empty page, or a page with links turned off,
    is still answered."""
    links = PageLinks(request("http://a]b/api/hitl/pending"), settings())
    assert links.key is not None
    with pytest.raises(HttpError) as refused:
        links.url(GRANT)
    assert refused.value.status == 400 and "Host header" in str(refused.value)
    unsigned = PageLinks(request("http://a]b/api/hitl/pending"),
                         load_settings({"WEBSITE_HOSTNAME": "localhost:7071", "HITL_DEV_INSECURE_LINKS": "0"}))
    assert unsigned.key is None


def test_the_key_is_not_in_its_repr():
    links = PageLinks(request("http://localhost:7071/api/hitl/pending"), settings())
    links.url(GRANT)
    assert KEY not in repr(links) and KEY not in str(links) and "signed=True" in repr(links)
