"""The store's newest-first pages of instances (what the dashboard lists): every filter and
every combination of them gives, page after page, exactly the instances a full sort of
the table gives, and the change mark moves with every commit, from any connection."""
from __future__ import annotations

import itertools
import random
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from devhost.clock import to_iso
from devhost.storage import PREFIX_SORT_LIMIT, InstanceRow, Store

NAMES = ("order_flow", "approval_flow", "nightly")
STATUSES = ("Pending", "Running", "Completed", "Failed", "Terminated", "Suspended")
START = datetime(2026, 3, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """1,500 instances: several share each creation time (the id breaks ties), ids share
    prefixes, and one prefix matches more instances than PREFIX_SORT_LIMIT."""
    store = Store(tmp_path_factory.mktemp("pages") / "hub.sqlite")
    rng = random.Random(7)
    with store.transaction():
        for number in range(1500):
            created = to_iso(START + timedelta(minutes=rng.randrange(600)))
            prefix = "bulk-" if number < PREFIX_SORT_LIMIT + 100 else rng.choice(("a-", "ab-", "b_%-"))
            store.put_instance(InstanceRow(f"{prefix}{number:05d}", rng.choice(NAMES), "e", rng.choice(STATUSES),
                                           None, None, None, created, created, None, None))
    yield store
    store.close()


def newest_first(rows):
    return sorted(rows, key=lambda r: (r.created_time, r.instance_id), reverse=True)


def every_page(store, page_size, **filters):
    """Follow the pages from the first to the last, as the dashboard does."""
    seen, before = [], None
    while True:
        page = store.page_instances(before=before, limit=page_size, **filters)
        seen.extend(page)
        if len(page) < page_size:
            return seen
        before = (page[-1].created_time, page[-1].instance_id)


FILTERS = {
    "statuses": [(), ("Failed",), ("Running", "Suspended")],
    "name": ["", "approval_flow"],
    "created": [("", ""), (to_iso(START + timedelta(hours=2)), to_iso(START + timedelta(hours=5)))],
    "id_prefix": ["", "bulk-", "ab-", "b_%", "a", "nobody"],
}


@pytest.mark.parametrize("statuses, name, created, id_prefix", list(itertools.product(*FILTERS.values())))
def test_pages_list_the_filtered_instances_newest_first_once_each(store, statuses, name, created, id_prefix):
    created_from, created_to = created
    everything = store.page_instances(limit=10_000)
    expected = newest_first(
        r for r in everything
        if (not statuses or r.runtime_status in statuses) and (not name or r.name == name)
        and (not created_from or created_from <= r.created_time <= created_to)
        and r.instance_id.startswith(id_prefix))
    listed = every_page(store, 37, statuses=statuses, name=name, created_from=created_from,
                        created_to=created_to, id_prefix=id_prefix)
    assert [r.instance_id for r in listed] == [r.instance_id for r in expected]


def test_the_unfiltered_list_is_every_instance(store):
    assert len(store.page_instances(limit=10_000)) == 1500
    assert store.page_instances(limit=10_000) == newest_first(store.page_instances(limit=10_000))


def test_the_change_mark_moves_with_commits_here_and_elsewhere(tmp_path):
    store = Store(tmp_path / "hub.sqlite")
    first = store.change_mark()
    assert store.change_mark() == first  # reading changes nothing
    with store.transaction():
        store.add_message("i1", None, {"EventType": 15}, 0.0)
    second = store.change_mark()
    assert second != first
    other = sqlite3.connect(store.path, isolation_level=None)  # another worker process
    other.execute("DELETE FROM messages")
    other.close()
    assert store.change_mark() != second
    store.close()


def test_an_empty_store_lists_nothing_under_any_filter(tmp_path):
    store = Store(tmp_path / "hub.sqlite")
    assert store.instance_names() == ()
    assert store.page_instances(statuses=("Failed",)) == store.page_instances(name="x") == []
    store.close()
