"""Ids made by `new_id` are ordinary version 4 UUIDs."""

from __future__ import annotations

import pickle
import uuid

from sovd.records import new_id


def test_new_ids_are_random_version_4_uuids_that_behave_like_parsed_ones() -> None:
    ids = [new_id() for _ in range(1000)]  # crosses a refill of the random pool
    assert len(set(ids)) == len(ids)
    for made in ids[:50]:
        assert made.version == 4
        assert made.variant == uuid.RFC_4122
        parsed = uuid.UUID(str(made))
        assert parsed == made and hash(parsed) == hash(made)
        assert pickle.loads(pickle.dumps(made)) == made
    assert len({made.int >> 124 for made in ids}) > 1  # the high bits are random too
