"""Garbage collector settings of a serving process, and the pause metric."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from web import heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def pause_count(registry: CollectorRegistry, generation: int) -> float:
    value = registry.get_sample_value(
        "sovd_gc_pause_seconds_count", {"generation": str(generation)}
    )
    assert value is not None
    return value


def test_serving_makes_young_collections_rare(restored_gc: None) -> None:
    heap.tune_for_serving()
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, *heap.OLDER_THRESHOLDS)


def test_freeze_moves_what_exists_out_of_the_collectors_sight(restored_gc: None) -> None:
    kept = [[] for _ in range(10)]
    assert all(gc.is_tracked(x) for x in kept)
    heap.freeze_startup_objects()
    assert gc.get_freeze_count() >= len(kept)
    watched = {id(x) for x in gc.get_objects()}
    assert not any(id(x) in watched for x in kept)
    later: list[object] = []
    assert id(later) in {id(x) for x in gc.get_objects()}


def test_each_collection_is_recorded_under_its_generation() -> None:
    registry = CollectorRegistry()
    pauses = heap.PauseMetric(registry)
    pauses.start()
    try:
        gc.collect(0)
        gc.collect(2)
        gc.collect(2)
    finally:
        pauses.stop()
    assert pause_count(registry, 0) >= 1
    assert pause_count(registry, 2) == 2
    gc.collect(2)  # no longer watched
    assert pause_count(registry, 2) == 2
    assert (registry.get_sample_value("sovd_gc_pause_seconds_sum", {"generation": "2"}) or 0) > 0
