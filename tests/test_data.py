"""zs_core.data: the TSV format, its errors, the wnut16 split, data folders and prediction files."""
import os
from pathlib import Path

import numpy as np
import pytest

from zs_core.config import DataConfig, data_config
from zs_core.data import SAMPLE_SEED, Sentence, load_splits, read_tsv
from zs_core.errors import InputError
from zs_core.predictions import write_word_scores_tsv

WNUT16_SIZES = {"train": 1915, "dev": 239, "test": 240}  # the fixed 80/10/10 split of 2,394 tweets

BENCH = Path(__file__).resolve().parents[2] / "shared" / "data"


def needs_bench(name: str):
    """Skip unless the benchmark folder ../shared/data/NAME is present."""
    return pytest.mark.skipif(not (BENCH / name).is_dir(), reason=f"benchmark data {BENCH / name} absent")


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def folder(tmp_path: Path, train: str, dev: str = "a\tc\n", test: str = "a\tc\n") -> str:
    for name, text in (("train", train), ("dev", dev), ("test", test)):
        write(tmp_path / f"{name}.tsv", text)
    return str(tmp_path)


def error(fn, *args, **kwargs) -> str:
    with pytest.raises(InputError) as e:
        fn(*args, **kwargs)
    message = str(e.value)
    assert "\n" not in message
    return message


# --- format -------------------------------------------------------------------------------------

def test_basic_format_and_labels(tmp_path):
    f = write(tmp_path / "a.tsv", "I\tc\nam\ti\n\nok\tc\n.\tc\n")
    s = read_tsv(f, positive_labels=("i",))
    assert [x.words for x in s] == [("I", "am"), ("ok", ".")]
    assert [x.labels for x in s] == [(0.0, 1.0), (0.0, 0.0)]
    assert [x.gold for x in s] == [(0, 1), (0, 0)]
    assert [x.label for x in s] == [1, 0]


def test_extra_columns_word_first_label_last(tmp_path):
    f = write(tmp_path / "a.tsv", "w1\tNN\tx\ti\nw2\tVB\ty\tc\n")
    (s,) = read_tsv(f, positive_labels=["i"])
    assert s.words == ("w1", "w2") and s.gold == (1, 0)


def test_blank_lines_docstart_crlf_and_no_final_blank(tmp_path):
    text = "-DOCSTART-\tO\n\n\na\tO\nb\tB-x\n\t\n  \n\n-DOCSTART- -X- O O\nc\tO\r\nd\tI-x"
    f = write(tmp_path / "a.tsv", text)
    s = read_tsv(f, positive_labels=("B-x", "I-x"))
    assert [x.words for x in s] == [("a", "b"), ("c", "d")]
    assert [x.gold for x in s] == [(0, 1), (0, 1)]


def test_words_are_read_as_written(tmp_path):
    f = write(tmp_path / "a.tsv", "Hello\tc\nWORLD\ti\n")
    assert read_tsv(f, ("i",))[0].words == ("Hello", "WORLD")  # lowercase applies when encoding, not here


def test_numeric_labels(tmp_path):
    f = write(tmp_path / "a.tsv", "a\t0\nb\t0.25\n\nc\t-1.5\nd\t0.0\n")
    s = read_tsv(f)
    assert [x.labels for x in s] == [(0.0, 0.25), (-1.5, 0.0)]
    assert [x.gold for x in s] == [(0, 1), (0, 0)]
    assert [x.label for x in s] == [1, 0]


def test_numeric_looking_categories_with_positive_labels(tmp_path):
    f = write(tmp_path / "a.tsv", "a\t2\nb\t3\nc\t1\n")
    assert read_tsv(f, ("3", "4"))[0].gold == (0, 1, 0)


def test_unlabelled_file(tmp_path):
    f = write(tmp_path / "a.tsv", "a\nb\n\nc\tignored\n")
    s = read_tsv(f, labelled=False)
    assert [x.words for x in s] == [("a", "b"), ("c",)] and s[0].labels is None
    with pytest.raises(ValueError):
        s[0].gold
    with pytest.raises(ValueError):
        s[0].label


def test_sentence_checks_lengths():
    with pytest.raises(ValueError):
        Sentence(("a", "b"), (1.0,))


# --- errors -------------------------------------------------------------------------------------

def test_missing_and_empty_file(tmp_path):
    assert error(read_tsv, tmp_path / "nope.tsv") == f"{tmp_path / 'nope.tsv'}: file not found"
    f = write(tmp_path / "empty.tsv", "\n\t\n-DOCSTART-\tO\n\n")
    assert error(read_tsv, f) == f"{f}: empty file (no sentences)"


def test_non_utf8_names_line(tmp_path):
    f = write(tmp_path / "a.tsv", b"a\tc\n\nb\xe9\tc\n")
    assert error(read_tsv, f, ("c",)).startswith(f"{f}:3: not UTF-8")


def test_one_column_names_line(tmp_path):
    f = write(tmp_path / "dev.tsv", "a\tc\nb c\n")
    assert error(read_tsv, f, ("c",)) == f"{f}:2: expected word<TAB>label, got 1 column"


def test_empty_word_and_empty_label(tmp_path):
    f = write(tmp_path / "a.tsv", "a\tc\n\tc\n")
    assert error(read_tsv, f, ("c",)).startswith(f"{f}:2: empty word")
    f = write(tmp_path / "b.tsv", "a\tc\n\nb\t\n")
    assert error(read_tsv, f, ("c",)).startswith(f"{f}:3: empty label")


def test_categorical_without_positive_labels(tmp_path):
    f = write(tmp_path / "a.tsv", "a\tc\nb\ti\n")
    assert error(read_tsv, f) == f"{f}:1: label 'c' is not a number (categorical labels need positive_labels)"


def test_mixed_numeric_and_categorical(tmp_path):
    f = write(tmp_path / "a.tsv", "a\t0.5\nb\t0\n\nc\tO\n")
    assert error(read_tsv, f) == f"{f}:4: label 'O' is not a number (mixed numeric and categorical labels)"
    f = write(tmp_path / "b.tsv", "a\t0.5\nb\tnan\n")
    assert error(read_tsv, f).startswith(f"{f}:2: label 'nan' is not a finite number")


def test_folder_errors(tmp_path):
    assert error(load_splits, DataConfig(dir=str(tmp_path / "no"), positive_labels=("i",))) == \
        f"{tmp_path / 'no'}: data directory not found (expected a folder holding train.tsv, dev.tsv and test.tsv)"
    (tmp_path / "a_file").write_text("x")
    assert error(load_splits, DataConfig(dir=str(tmp_path / "a_file"), positive_labels=("i",))).startswith(
        f"{tmp_path / 'a_file'}: is not a folder (expected a folder")
    d = folder(tmp_path, "a\tc\nb\tx\n")
    assert error(load_splits, DataConfig(dir=d, positive_labels=("i",))) == \
        f"{tmp_path / 'train.tsv'}: none of positive_labels ('i') appears; labels seen: c, x"
    d = folder(tmp_path, "a\t0\nb\t-1\n", "a\t1\n", "a\t1\n")
    assert error(load_splits, DataConfig(dir=d)).startswith(f"{tmp_path / 'train.tsv'}: no positive sentence")
    (tmp_path / "dev.tsv").unlink()
    assert error(load_splits, DataConfig(dir=d)) == f"{tmp_path / 'dev.tsv'}: file not found"


def test_dev_label_unseen_in_train(tmp_path):
    d = folder(tmp_path, "a\tc\nb\ti\n", "a\tc\n\nb\tI\n")
    assert error(load_splits, DataConfig(dir=d, positive_labels=("i",))).startswith(
        f"{tmp_path / 'dev.tsv'}:3: label 'I' never appears in {tmp_path / 'train.tsv'}")


def test_folder_splits_limit_and_unlabelled_test(tmp_path):
    d = folder(tmp_path, "a\tc\n\nB\ti\n\nc\tc\n", "d\tc\n\ne\ti\n", "f\ng\n\nh\n")
    data = load_splits(DataConfig(dir=d, positive_labels=("i",), lowercase=True))
    assert [len(data[s]) for s in ("train", "dev", "test")] == [3, 2, 2]
    assert data["train"][1].words == ("B",) and data["test"][0].labels is None
    data = load_splits(DataConfig(dir=d, positive_labels=("i",), limit={"train": 2, "test": 1}),
                       splits=("train", "test"))
    assert sorted(data) == ["test", "train"] and [len(data["train"]), len(data["test"])] == [2, 1]
    assert error(load_splits, DataConfig(dir=d, positive_labels=("i",), limit={"train": 1})) == \
        "data.limit.train: no positive sentence among the first 1 train sentences"
    # a 1-sentence sample draws sentence 2 ("c", negative); sentence 1 is train's only positive one
    assert list(np.random.default_rng(SAMPLE_SEED).choice(3, size=1, replace=False)) == [2]
    assert error(load_splits, DataConfig(dir=d, positive_labels=("i",), sample={"train": 1})) == \
        "data.sample.train: no positive sentence among the sampled 1 train sentences"
    write(tmp_path / "test.tsv", "f\tc\ng\n")
    assert error(load_splits, DataConfig(dir=d, positive_labels=("i",))) == \
        f"{tmp_path / 'test.tsv'}:2: expected word<TAB>label, got 1 column"


def test_numeric_folder(tmp_path):
    d = folder(tmp_path, "a\t0\nb\t0.7\n", "c\t0.1\n", "d\t5\n")
    data = load_splits(DataConfig(dir=d))
    assert data["train"][0].labels == (0.0, 0.7) and data["dev"][0].gold == (1,)


# --- wnut16 -------------------------------------------------------------------------------------

def test_wnut16_split_is_pinned():
    data = load_splits(DataConfig())
    assert {s: len(v) for s, v in data.items()} == WNUT16_SIZES == {"train": 1915, "dev": 239, "test": 240}
    assert data["train"][0].words[:3] == ("My", "boobs", "look")
    assert data["dev"][0].words[:3] == ("@Jee_agustino", ":O", "seriously")
    assert {s: sum(sum(x.gold) for x in v) for s, v in data.items()} == {"train": 1969, "dev": 256, "test": 237}
    assert {s: sum(x.label for x in v) for s, v in data.items()} == {"train": 741, "dev": 86, "test": 91}
    assert sum(len(x.words) for v in data.values() for x in v) == 46469


def test_wnut16_limit_and_unknown_split():
    full = load_splits(DataConfig())
    data = load_splits(DataConfig(limit={"train": 5, "dev": 3}), splits=("train", "dev", "test"))
    assert [len(data[s]) for s in ("train", "dev", "test")] == [5, 3, 240]
    assert data["train"][0].words[:3] == ("My", "boobs", "look")
    assert [x.gold for x in data["dev"]] == [x.gold for x in full["dev"][:3]]
    with pytest.raises(ValueError):
        load_splits(DataConfig(), splits=("validation",))


def test_sample_is_fixed_random_and_in_file_order():
    full = load_splits(DataConfig())
    data = load_splits(DataConfig(sample={"test": 20}), splits=("dev", "test"))
    assert len(data["dev"]) == 239 and len(data["test"]) == 20  # only the split named is sampled
    picked = [full["test"].index(s) for s in data["test"]]
    assert picked == sorted(picked) and picked != list(range(20))  # file order kept, not the first 20
    again = load_splits(DataConfig(sample={"test": 20}), splits=("test",))["test"]
    assert again == data["test"]  # same sentences in every command
    expected = sorted(np.random.default_rng(SAMPLE_SEED).choice(240, size=20, replace=False))
    assert picked == [int(i) for i in expected]
    limited = load_splits(DataConfig(limit={"test": 30}, sample={"test": 10}), splits=("test",))["test"]
    assert len(limited) == 10 and all(s in full["test"][:30] for s in limited)  # sampled after the limit
    assert load_splits(DataConfig(sample={"test": 500}), splits=("test",))["test"] == full["test"]


# --- config -------------------------------------------------------------------------------------

def test_data_config_from_the_data_block():
    assert data_config({}, "c.yaml") == DataConfig() == DataConfig(dataset="wnut16")
    assert data_config({"dataset": "wnut16", "limit": {"train": 8}}, "c.yaml") == DataConfig(limit={"train": 8})
    cfg = data_config({"dir": "d", "positive_labels": ["pos", 4]}, "c.yaml")
    assert cfg == DataConfig(dir="d", positive_labels=("pos", "4")) and cfg.dataset is None
    assert data_config({"dir": "d", "positive_labels": "i"}, "c").positive_labels == ("i",)
    assert data_config({"dataset": None, "dir": "d"}, "c").dir == "d"
    assert data_config({"sample": {"test": 4}}, "c").sample == {"test": 4}


@pytest.mark.parametrize("d, start", [
    ({"dirr": "x"}, "c.yaml: data.dirr: unknown key; allowed: dataset, dir, positive_labels, seed_dataset, root, limit, sample"),
    ({"lowercase": True}, "c.yaml: data.lowercase: unknown key (a flat key: give it under fixed:); allowed:"),
    ({"dataset": "wnut16", "dir": "x"}, "c.yaml: data: give one of data.dataset, data.dir, data.seed_dataset"),
    ({"dataset": "conll"}, "c.yaml: data.dataset must be one of wnut16, got 'conll'"),
    ({"positive_labels": ["i"]}, "c.yaml: data.positive_labels: only used with data.dir"),
    ({"dir": "x", "positive_labels": [True]}, "c.yaml: data.positive_labels expects a list, got [True]"),
    ({"limit": {"valid": 3}}, "c.yaml: data.limit.valid must be one of train, dev, test, got 'valid'"),
    ({"limit": {"train": 0}}, "c.yaml: data.limit.train must be at least 1, got 0"),
    ({"limit": 5}, "c.yaml: data.limit expects a mapping, got 5"),
    ({"sample": {"test": -1}}, "c.yaml: data.sample.test must be at least 1, got -1"),
    ({"sample": [3]}, "c.yaml: data.sample expects a mapping, got [3]"),
    ({"dir": 3}, "c.yaml: data.dir expects str, got 3"),
    (["wnut16"], "c.yaml: data: expected a mapping"),
])
def test_data_config_errors(d, start):
    assert error(data_config, d, "c.yaml").startswith(start)


# --- prediction files ---------------------------------------------------------------------------

def test_write_word_scores_round_trip(tmp_path):
    sentences = [Sentence(("a", "b"), None), Sentence(("é",), None)]
    scores = [[0.125, -2.0], [1e-7]]
    out = tmp_path / "pred.tsv"
    write_word_scores_tsv(out, sentences, scores)
    assert out.read_text(encoding="utf-8") == "a\t0.125\nb\t-2.0\n\né\t1e-07\n\n"
    assert not (tmp_path / "pred.tsv.tmp").exists()
    back = read_tsv(out)
    assert [x.words for x in back] == [("a", "b"), ("é",)]
    assert [list(x.labels) for x in back] == scores
    with pytest.raises(ValueError):
        write_word_scores_tsv(out, sentences, [[0.1], [0.2]])
    with pytest.raises(ValueError):
        write_word_scores_tsv(out, sentences, scores[:1])
    assert read_tsv(out)[0].labels == (0.125, -2.0)


# --- benchmark folders (skipped when ../shared/data is absent) -----------------------------------

@needs_bench("fce")
def test_fce_counts():
    data = load_splits(DataConfig(dir=str(BENCH / "fce"), positive_labels=("i",)))
    assert {s: len(v) for s, v in data.items()} == {"train": 26509, "dev": 2222, "test": 2720}
    assert all(x.labels is not None for v in data.values() for x in v)


@needs_bench("sst")
def test_sst_counts():
    data = load_splits(DataConfig(dir=str(BENCH / "sst"), positive_labels=("pos", "vpos")))
    assert {s: len(v) for s, v in data.items()} == {"train": 8540, "dev": 1101, "test": 2210}
    assert sum(x.label for x in data["dev"]) > 0


def test_word_lines_follow_the_readers_rules(tmp_path):
    f = write(tmp_path / "a.tsv", "-DOCSTART-\tO\n\na\tO\nb\tI\n\n\nc\tO\n")
    from zs_core.data import word_lines

    assert word_lines(f) == ([[3, 4], [7]], 8)


# --- hostile files: each class is one line naming the file and line ----------------------------------

def test_every_line_ending_reads_the_same(tmp_path):
    lf = read_tsv(write(tmp_path / "lf.tsv", "a\tc\nb\ti\n\nc\tc\n"), ("i",))
    for name, ending in (("crlf", "\r\n"), ("cr", "\r")):
        path = tmp_path / f"{name}.tsv"
        path.write_bytes("a\tc\nb\ti\n\nc\tc\n".replace("\n", ending).encode())
        assert read_tsv(path, ("i",)) == lf and len(lf) == 2  # a lone CR ends a line: not one 3-word sentence


def test_a_byte_order_mark_or_nul_inside_is_named(tmp_path):
    start = tmp_path / "start.tsv"
    start.write_bytes("\ufeffa\tc\nb\ti\n".encode())
    assert read_tsv(start, ("i",))[0].words == ("a", "b")  # a leading BOM is dropped
    joined = tmp_path / "joined.tsv"
    joined.write_bytes("a\tc\n\n\ufeffb\ti\n".encode())
    assert error(read_tsv, joined, ("i",)) == f"{joined}:3: a byte-order mark (U+FEFF) inside the file (two files joined?)"
    nul = tmp_path / "nul.tsv"
    nul.write_bytes(b"a\tc\nb\x00\ti\n")
    assert error(read_tsv, nul, ("i",)) == f"{nul}:2: a NUL character"


def test_a_pipe_is_refused_instead_of_blocking(tmp_path):
    pipe = tmp_path / "train.tsv"
    os.mkfifo(pipe)
    assert error(read_tsv, pipe) == f"{pipe}: not a regular file (a pipe or device?), expected a TSV file"
    assert error(read_tsv, tmp_path) == f"{tmp_path}: is a folder, expected a TSV file"


def test_numbers_are_plain_decimals(tmp_path):
    f = write(tmp_path / "u.tsv", "a\t1_0\nb\t0\n")
    assert error(read_tsv, f) == f"{f}:1: label '1_0' is not a number (categorical labels need positive_labels)"
    assert read_tsv(write(tmp_path / "e.tsv", "a\t1e-3\nb\t-2.5\n"))[0].labels == (0.001, -2.5)


def test_a_positive_label_with_a_stray_space_is_shown_quoted(tmp_path):
    d = folder(tmp_path, "a\tc\nb\ti\n")
    assert "none of positive_labels (' i') appears; labels seen: c, i" in \
        error(load_splits, DataConfig(dir=d, positive_labels=(" i",)))
