"""The instance store's durable write, in both of its ways: an unnamed file linked once it is
synced (``O_TMPFILE``, where the file system has it) and a temporary name (where it has not)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from radassist.store import incoming
from radassist.store.incoming import unnamed_files_work
from radassist.store.instances import InstanceStore

WAYS = ["unnamed", "temporary name"]


@pytest.fixture(params=WAYS)
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> InstanceStore:
    """A store under ``tmp_path / "store"`` writing the given way.  The temporary-name way is the
    one a file system without ``O_TMPFILE`` gets: ``open`` of the folder fails as old kernels fail
    it (EISDIR) and the store must fall back by itself."""
    if request.param == "unnamed":
        if not unnamed_files_work(str(tmp_path)):
            pytest.skip("this system has no O_TMPFILE or no /proc")
    else:
        monkeypatch.setattr(incoming, "_UNNAMED_FLAGS", os.O_WRONLY)
    return InstanceStore(tmp_path / "store")


def _files(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file())


def test_the_same_bytes_are_the_stored_file_and_other_bytes_a_revision_beside_it(store: InstanceStore) -> None:
    """``replaced``: the stored file is not the write's own; a revision is named by its hash; the
    first file never changes; no temporary file is left."""
    first = store.write(b"one", "1.2", "1.2.1", "1.2.1.1")
    again = store.write(b"one", "1.2", "1.2.1", "1.2.1.1")
    assert (again.relpath, again.replaced, first.replaced) == (first.relpath, True, False)
    source = store.root.parent / "src"
    source.write_bytes(b"second version")
    with open(source, "rb") as f:
        second = store.write(f, "1.2", "1.2.1", "1.2.1.1")
    assert second.relpath != first.relpath and not second.replaced
    assert second.relpath.rsplit("/", 1)[0] == first.relpath.rsplit("/", 1)[0]  # beside it, in the study's folder
    assert store.path(first.relpath).read_bytes() == b"one"
    assert store.path(second.relpath).read_bytes() == b"second version"
    assert store.write(b"second version", "1.2", "1.2.1", "1.2.1.1") == second.__class__(
        second.relpath, second.size_bytes, replaced=True)
    assert first.root == store.root.resolve()
    assert _files(store.root) == sorted([Path(first.relpath).name, Path(second.relpath).name])
    assert oct(store.path(first.relpath).stat().st_mode & 0o777) == oct(0o600)


def test_a_file_has_no_name_until_it_is_written_and_synced(store: InstanceStore, request: pytest.FixtureRequest) -> None:
    """Looked at while the bytes arrive, the folder holds nothing (unnamed) or only the temporary
    name, never the instance's own name: a crash mid-write cannot leave half a file under it."""
    folder = store.root / store.relpath_for("1.2", "1.2.1", "1.2.1.1").rsplit("/", 1)[0]
    seen: list[list[str]] = []

    class Watched:
        def __init__(self) -> None:
            self.chunks = [b"first half ", b"second half", b""]

        def read(self, _n: int = -1) -> bytes:
            seen.append(sorted(p.name for p in folder.iterdir()))
            return self.chunks.pop(0)

    stored = store.write(Watched(), "1.2", "1.2.1", "1.2.1.1")  # type: ignore[arg-type]
    assert store.path(stored.relpath).read_bytes() == b"first half second half"
    expected = [] if request.node.callspec.params["store"] == "unnamed" else [".incoming-"]
    assert all([name[:10] for name in names] == expected for names in seen), seen
    assert _files(store.root) == [Path(stored.relpath).name]


def test_a_failed_write_leaves_nothing(store: InstanceStore) -> None:
    class Broken:
        def read(self, _n: int = -1) -> bytes:
            raise OSError("disk went away")

    with pytest.raises(OSError, match="disk went away"):
        store.write(Broken(), "1.2", "1.2.1", "1.2.1.1")  # type: ignore[arg-type]
    assert _files(store.root) == []


def test_a_study_folder_removed_by_retention_is_made_anew(store: InstanceStore) -> None:
    """The store remembers the folders it made; one removed since is made again, owner-only."""
    first = store.write(b"one", "1.2", "1.2.1", "1.2.1.1")
    shutil.rmtree(store.root / store.study_folder("1.2"))
    again = store.write(b"one", "1.2", "1.2.1", "1.2.1.1")
    assert (again.relpath, again.replaced) == (first.relpath, False)
    assert store.path(again.relpath).read_bytes() == b"one"
    assert oct(store.path(again.relpath).parent.stat().st_mode & 0o777) == oct(0o700)


def test_the_store_falls_back_once_and_stays_on_temporary_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file system that refuses unnamed files is asked once, not once per instance."""
    calls: list[int] = []
    real_open = os.open

    def counting_open(path: str, flags: int, *args: object, **kwargs: object) -> int:
        if flags == os.O_WRONLY:
            calls.append(flags)
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(incoming, "_UNNAMED_FLAGS", os.O_WRONLY)
    monkeypatch.setattr(os, "open", counting_open)
    store = InstanceStore(tmp_path)
    for n in range(3):
        store.write(b"x%d" % n, "1.2", "1.2.1", f"1.2.1.{n}")
    assert len(calls) == 1
    assert len(_files(tmp_path)) == 3


def test_a_system_that_cannot_link_unnamed_files_gets_temporary_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``O_TMPFILE`` works but ``linkat`` through ``/proc`` does not (a sandbox, no ``/proc``): the
    first write finds out and every instance is still stored, none refused."""
    monkeypatch.setattr(incoming, "_FD_LINKS", str(tmp_path / "no-such-proc"))
    store = InstanceStore(tmp_path / "store")
    stored = [store.write(b"x%d" % n, "1.2", "1.2.1", f"1.2.1.{n}") for n in range(3)]
    assert [store.path(s.relpath).read_bytes() for s in stored] == [b"x0", b"x1", b"x2"]
    assert store._unnamed is False
    assert _files(store.root) == sorted(Path(s.relpath).name for s in stored)  # no probe, no temporary left
