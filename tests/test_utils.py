import stat

import pytest

from avsep import utils
from avsep.utils import Ledger, atomic_path, atomic_write_text, clean_partials


def test_atomic_path_replaces_only_on_success(tmp_path):
    dest = tmp_path / "out.txt"
    atomic_write_text(dest, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert dest.read_text() == "old"
    assert list(tmp_path.iterdir()) == [dest], "the temporary file is removed"
    with atomic_path(dest) as tmp:
        assert tmp.suffix == ".part" and tmp.name.endswith(".txt.part")
        tmp.write_text("new")
    assert dest.read_text() == "new"


def test_finished_files_follow_the_umask(tmp_path):
    # mkstemp alone would leave 0o600: owner-only data files surprise people who share them
    atomic_write_text(tmp_path / "a.txt", "x")
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o666 & ~utils._UMASK


def test_ledger_survives_a_torn_last_line(tmp_path):
    ledger = Ledger(tmp_path / "log.jsonl")
    ledger.append(id="a", status="ok")
    with open(ledger.path, "a") as f:
        f.write('{"id": "b", "sta')  # a kill in the middle of a write
    ledger.append(id="c", status="skipped")
    assert [r["id"] for r in ledger.read()] == ["a", "c"]
    assert ledger.latest()["c"]["status"] == "skipped"


def test_clean_partials(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".x.wav.abc.wav.part").write_text("")
    (tmp_path / "keep.wav").write_text("")
    assert clean_partials(tmp_path) == 1
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["keep.wav"]
