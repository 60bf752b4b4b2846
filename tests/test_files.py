"""zs_core.files: a file or folder is replaced whole or not at all."""
import pytest

from zs_core.files import atomic_path, write_text_atomic


def test_a_file_is_replaced_only_when_the_write_succeeds(tmp_path):
    path = tmp_path / "sub" / "out.json"
    write_text_atomic(path, "first\n")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert path.read_text() == "first\n" and sorted(p.name for p in path.parent.iterdir()) == ["out.json"]
    write_text_atomic(path, "second\n")
    assert path.read_text() == "second\n"


def test_a_folder_is_replaced_whole(tmp_path):
    folder = tmp_path / "ckpt"
    for text in ("old", "new"):
        with atomic_path(folder) as tmp:
            tmp.mkdir()
            (tmp / f"{text}.txt").write_text(text)
    assert [p.name for p in folder.iterdir()] == ["new.txt"] and [p.name for p in tmp_path.iterdir()] == ["ckpt"]
