"""A serving listener process keeps what start-up built out of the garbage collector's walks
(dicom_node.processes.keep_start_up_out_of_collections): pynetdicom's server runs a full collection
every 60 connections, with the GIL held."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from dicom_node.processes import serve_until_signal
from radassist.config import Settings
from tests.conftest import free_port


@pytest.fixture
def thawed() -> Iterator[None]:
    """The test process's heap is collected as before once the test is over."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_serving_freezes_what_start_up_built(migrated_settings: Settings, thawed: None) -> None:
    settings = migrated_settings.model_copy(
        update={"dicom": migrated_settings.dicom.model_copy(update={"port": free_port(), "host": "127.0.0.1"})}
    )
    assert gc.get_freeze_count() == 0
    serve_until_signal(settings, None, 0, every_second=lambda: False)  # serves for a second, then stops
    assert gc.get_freeze_count() > 10_000  # the process's modules, the engine, the AE and its contexts
