"""Paths never come from DICOM values: hostile UIDs are refused at the edge, and even if one got
past the header check, the store would still write strictly under its root.

Already covered in tests/node: test_intake.py (three hostile UIDs through ``InstanceStore.write``,
and ``InstanceStore.path`` refusing ``../``, absolute and empty relative paths);
test_corpus.py (a study UID ``../../../etc/passwd`` and a series UID with ``/`` and NUL sent over
an association are refused).  Here: every UID position times every kind of hostile value, over a
real association and straight into the store, with the whole temporary tree checked afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from radassist.config import Settings
from radassist.db.migrate import upgrade
from radassist.db.tables import Instance
from radassist.store.instances import InstanceStore
from tests.node.conftest import Node
from tests.node.corpus import _body, _case, valid_file
from tests.node.dcmtk import echo
from tests.node.test_corpus import _send_file

ESCAPE = f"radassist-escape-{uuid.uuid4().hex[:8]}"
HOSTILE = {
    "dotdot": f"../../../../{ESCAPE}",
    "dotdot_in_uid": f"1.2.3/../../../{ESCAPE}",
    "slash": "1.2/3.4",
    "absolute": f"/tmp/{ESCAPE}",
    "dot_dot_only": "..",
    "backslash": f"..\\..\\{ESCAPE}",
    "nul": f"1.2.3\x00/../../{ESCAPE}",
    "long_digits": "1." + "2" * 400,
    "long_traversal": "../" * 120 + ESCAPE,
    "tilde": f"~/{ESCAPE}",
}


def _tree(root: Path, skip: Path) -> dict[str, int]:
    """Every file under ``root`` but those under ``skip`` and the SQLite files: path -> size."""
    found = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if path.is_relative_to(skip) or ".sqlite3" in name:
                continue
            found[str(path)] = path.stat().st_size
    return found


def _assert_confined(root: Path) -> list[Path]:
    """Every entry under ``root`` is a real file or folder whose resolved path stays under it."""
    resolved_root = root.resolve()
    entries = list(root.rglob("*"))
    for entry in entries:
        assert not entry.is_symlink(), entry
        assert entry.resolve().is_relative_to(resolved_root), entry
        assert ESCAPE not in entry.name and ".." not in entry.name
    return [e for e in entries if e.is_file()]


@pytest.fixture
def sqlite_node(make_settings: Callable[..., Settings], start_node: Callable[..., Node], tmp_path: Path) -> Node:
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'paths.sqlite3'}")
    upgrade(settings)
    return start_node(settings)


def test_hostile_uids_over_an_association_are_refused_and_write_nothing(sqlite_node: Node, tmp_path: Path) -> None:
    node = sqlite_node
    storage = node.settings.storage.path
    outside_before = _tree(tmp_path, storage)
    problems = []
    sent = 0
    for position in ("study", "series", "instance"):
        for label, value in HOSTILE.items():
            path = tmp_path / "cases" / f"{position}-{label}.dcm"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(_case(lambda u, p=position, v=value: _body(u, **{p: v}))()[1])
            outside_before[str(path)] = path.stat().st_size
            status = _send_file(node, path)
            sent += 1
            if status == 0x0000:
                problems.append(f"{position}={label!r}: stored")
    assert problems == []
    assert sent == 3 * len(HOSTILE)
    assert echo(node.port).returncode == 0  # still serving
    control = tmp_path / "cases" / "valid.dcm"
    control.write_bytes(valid_file()[1])
    outside_before[str(control)] = control.stat().st_size
    assert _send_file(node, control) == 0x0000

    with node.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Instance)) == 1  # only the control
    stored = _assert_confined(storage)
    assert [p for p in stored if p.is_relative_to(node.settings.storage.instances_dir)] == node.files()
    assert len(node.files()) == 1 and node.files()[0].suffix == ".dcm"
    assert _tree(tmp_path, storage) == outside_before  # nothing written beside the data folder
    assert not Path(f"/tmp/{ESCAPE}").exists() and not (Path.home() / ESCAPE).exists()


@pytest.mark.parametrize("position", [0, 1, 2], ids=["study", "series", "sop"])
def test_the_store_confines_any_uid_that_got_past_the_header_check(tmp_path: Path, position: int) -> None:
    """Defence in depth: ``InstanceStore.write`` with each hostile value (and a 10,000-character and a
    non-ASCII one) lands under the store root, named by hashes."""
    root = tmp_path / "data" / "instances"
    store = InstanceStore(root)
    values = [*HOSTILE.values(), "1." + "9" * 10_000, "1.2.ü.∞", "\x00", "/"]
    for n, value in enumerate(values):
        uids = [f"1.2.{n}", f"1.2.{n}.1", f"1.2.{n}.1.1"]
        uids[position] = value
        stored = store.write(b"DICM" + bytes([n]), *uids)
        full = store.path(stored.relpath)
        assert full.is_relative_to(root.resolve()) and full.read_bytes() == b"DICM" + bytes([n])
        assert all(len(part) <= 64 + 4 for part in Path(stored.relpath).parts)  # hashes, never the value
    assert len(_assert_confined(root)) == len(values)
    assert _tree(tmp_path, root) == {}
    uids = ["1.2", "1.2.1", "1.2.1.1"]
    uids[position] = ""
    with pytest.raises(ValueError):
        store.write(b"x", *uids)
