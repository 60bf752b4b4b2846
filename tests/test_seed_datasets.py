"""The seed's seven datasets by name (data.seed_dataset + root, --seed-dataset --data-root, $ZS_DATA_ROOT, a
.conf's dataset) and sentence-level files ({split}.sentences.tsv), on tiny files laid out as the seed lays them
out. The seed's file names are written out here, not taken from zs_core.layouts, so a wrong name fails."""
import json
import os
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from sweep.common import DATA_ROOT_ENV, Parser, add_data_args, data_config_from_args
from sweep.seed_conf import conf_dataset
from sweep.space import load_sweep
from zs_core.config import DataConfig
from zs_core.data import load_splits
from zs_core.errors import InputError
from zs_core.provenance import data_provenance, short_sha256

ROOT = Path(__file__).resolve().parent.parent
# name: token file, sentence-level file (below data/, {mode} = split), positive label, other label
SEED = {
    "fce_v1": ("fce_v1_tsv/fce-public.{mode}.original.tsv", "fce_v1_tsv/fce-public.{mode}.original.tsv_sentencelevel",
               "i", "c"),
    "conll10": ("conll10/conll10_task2_rev2.cue.{mode}.tsv", "conll10/conll10_task2_rev2.cue.{mode}.tsv_sentencelevel",
                "C", "O"),
    "sst2_pos": ("SST_labelling/stanford_sentiment.{mode}.tokens.positive.tsv",
                 "SST_labelling/stanford_sentiment.{mode}.sentences.positive.tsv", "P", "O"),
    "sst2_neg": ("SST_labelling/stanford_sentiment.{mode}.tokens.negative.tsv",
                 "SST_labelling/stanford_sentiment.{mode}.sentences.negative.tsv", "N", "O"),
    "semeval_2013_twitter_pos": ("semeval15t10/semeval_2013_twitter/semeval15t10.tokens.positive.{mode}2013.tsv",
                                 "semeval15t10/semeval_2013_twitter/semeval15t10.sentences.positive.{mode}2013.tsv",
                                 "P", "O"),
    "semeval_2013_twitter_neg": ("semeval15t10/semeval_2013_twitter/semeval15t10.tokens.negative.{mode}2013.tsv",
                                 "semeval15t10/semeval_2013_twitter/semeval15t10.sentences.negative.{mode}2013.tsv",
                                 "N", "O"),
    "bea19": ("bea19/{mode}.tsv", "bea19/{mode}.tsv_sentencelevel", "i", "c"),
}
# Each split's sentences: (token labels, sentence-level label), 1 = positive. Sentence 0 holds a positive
# word but is negative overall (SST's "positive word, negative sentence"); sentence 2 is the reverse.
SENTENCES = [((0, 1, 0), 0), ((1, 0), 1), ((0, 0, 0), 1)]
BEA_TRAIN = SENTENCES + [((0, 1), 1)]  # bea19 has no dev file: dev = train sentences 0 and 3
BEA_INDICES = "[3, 0, 3]\n"            # out of order, with a duplicate
FLAT = ["train", "dev", "test"]


def words(name: str, split: str, k: int, n: int) -> list[str]:
    return [f"{name}.{split}.{k}"] + [f"w{j}" for j in range(1, n)]


def write_pair(tokens: Path, level: Path, sentences, name: str, split: str, pos: str, neg: str) -> None:
    """A token-level file and its sentence-level file (every word carrying the sentence's label)."""
    tok, sen = [], []
    for k, (gold, label) in enumerate(sentences):
        ws = words(name, split, k, len(gold))
        tok += [f"{w}\t{pos if g else neg}" for w, g in zip(ws, gold)] + [""]
        sen += [f"{w}\t{pos if label else neg}" for w in ws] + [""]
    for path, lines in ((tokens, tok), (level, sen)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines), encoding="utf-8")


@pytest.fixture
def seed_root(tmp_path) -> Path:
    """A root holding the seed's data/ folder with all seven datasets (bea19: train, test and its dev indices)."""
    root = tmp_path / "seed"
    for name, (tokens, level, pos, neg) in SEED.items():
        for split in (("train", "test") if name == "bea19" else FLAT):
            rows = BEA_TRAIN if name == "bea19" and split == "train" else SENTENCES
            write_pair(*(root / "data" / p.replace("{mode}", split) for p in (tokens, level)), rows, name, split,
                       pos, neg)
    (root / "data" / "bea19" / "dev_indices_train_ABC.txt").write_text(BEA_INDICES, encoding="utf-8")
    return root


def expected(name: str, split: str) -> tuple[list[str], list[int], list[tuple[int, ...]]]:
    """(first word, sentence label, gold) of each sentence of a split."""
    pick = {"train": [1, 2], "dev": [0, 3]}.get(split) if name == "bea19" else None
    rows = [(k, *BEA_TRAIN[k]) for k in pick] if pick else [(k, *s) for k, s in enumerate(SENTENCES)]
    where = "train" if pick else split
    return [f"{name}.{where}.{k}" for k, _, _ in rows], [lab for _, _, lab in rows], [g for _, g, _ in rows]


def observed(data: dict) -> dict:
    return {s: ([x.words[0] for x in v], [x.label for x in v], [x.gold for x in v]) for s, v in data.items()}


def seed_cfg(name: str, root: Path) -> DataConfig:
    return DataConfig(seed_dataset=name, root=str(root))


def message(call, *args) -> str:
    with pytest.raises(InputError) as err:
        call(*args)
    assert "\n" not in str(err.value)
    return str(err.value)


@pytest.mark.parametrize("inner", [False, True], ids=["root", "data_folder"])
@pytest.mark.parametrize("name", list(SEED))
def test_each_seed_dataset_by_name(seed_root, name, inner):
    root = seed_root / "data" if inner else seed_root
    cfg = seed_cfg(name, root)
    assert observed(load_splits(cfg)) == {s: expected(name, s) for s in FLAT}
    assert cfg.positive() == (SEED[name][2],)
    mode = "train" if name == "bea19" else "dev"
    files = cfg.split_files("dev")
    assert (files.tokens, files.sentences) == tuple(str(seed_root / "data" / p.replace("{mode}", mode))
                                                    for p in SEED[name][:2])
    prov = data_provenance(cfg)
    assert (prov["data"], prov["data_positive_labels"], prov["data_sentence_labels"]) == \
        (f"{name}@{root}", SEED[name][2], "sentence-level files")
    level = seed_root / "data" / SEED[name][1].replace("{mode}", "test")
    assert prov["data_sentences_sha256_test"] == short_sha256(level)


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(json.dumps({"name": "t", "data": data, "fixed": {"model_name": "tiny-random"}}), encoding="utf-8")
    return path


def test_yaml_names_a_seed_dataset(seed_root, tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    sweep = load_sweep(write_yaml(tmp_path / "s.yaml", {"seed_dataset": "sst2_neg", "root": str(seed_root)}))
    assert sweep.data == seed_cfg("sst2_neg", seed_root)
    assert observed(load_splits(sweep.data))["dev"] == expected("sst2_neg", "dev")
    # without data.root: --data-root (load_sweep's data_root), else $ZS_DATA_ROOT
    bare = write_yaml(tmp_path / "b.yaml", {"seed_dataset": "semeval_2013_twitter_pos"})
    monkeypatch.setenv(DATA_ROOT_ENV, str(seed_root / "data"))
    assert load_sweep(bare).data == seed_cfg("semeval_2013_twitter_pos", seed_root / "data")
    assert load_sweep(bare, [], str(seed_root)).data == seed_cfg("semeval_2013_twitter_pos", seed_root)


@pytest.mark.parametrize("data, why", [
    ({"seed_dataset": "fce_v1"}, "data.root: expected with data.seed_dataset (the folder that holds the seed's "
                                 "data/ folder, or set ZS_DATA_ROOT)"),
    ({"root": "r"}, "data.root: only used with data.seed_dataset"),
    ({"seed_dataset": "fce_v1", "root": "r", "dataset": "wnut16"}, "data: give one of data.dataset, data.dir, "
                                                                    "data.seed_dataset"),
    ({"seed_dataset": "fce", "root": "r"}, "data.seed_dataset must be one of fce_v1, conll10, sst2_pos, sst2_neg, "
                                           "semeval_2013_twitter_pos, semeval_2013_twitter_neg, bea19, got 'fce'"),
])
def test_yaml_seed_dataset_errors(tmp_path, monkeypatch, data, why):
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    path = write_yaml(tmp_path / "s.yaml", data)
    assert message(load_sweep, path) == f"{path}: {why}"


def parse(*argv: str) -> DataConfig:
    parser = Parser(prog="t")
    add_data_args(parser)
    return data_config_from_args(parser.parse_args(list(argv)))


def test_cli_names_a_seed_dataset(seed_root, monkeypatch):
    monkeypatch.setenv(DATA_ROOT_ENV, "/nowhere")  # --data-root wins over the environment
    assert parse("--seed-dataset", "conll10", "--data-root", str(seed_root)) == seed_cfg("conll10", seed_root)
    monkeypatch.setenv(DATA_ROOT_ENV, str(seed_root))
    cfg = parse("--seed-dataset", "bea19", "--limit", "1")
    assert cfg == DataConfig(seed_dataset="bea19", root=str(seed_root), limit={"train": 1, "dev": 1, "test": 1})
    assert observed(load_splits(cfg)) == {s: tuple(x[:1] for x in expected("bea19", s)) for s in FLAT}


@pytest.mark.parametrize("argv, why", [
    (["--seed-dataset", "conll10"], "--seed-dataset conll10: give --data-root PATH (the folder that holds the "
                                    "seed's data/ folder) or set ZS_DATA_ROOT"),
    (["--data-root", "r"], "--data-root goes with --seed-dataset (or a .conf's dataset = ...)"),
    (["--data", "wnut16", "--seed-dataset", "fce_v1"], "--data and --seed-dataset: give one of them"),
    (["--data-dir", "d", "--seed-dataset", "fce_v1", "--data-root", "r"],
     "--data-dir and --seed-dataset: give one of them"),
    (["--seed-dataset", "fce_v1", "--data-root", "r", "--positive-labels", "i"],
     "--positive-labels goes with --data-dir"),
])
def test_cli_seed_dataset_errors(monkeypatch, argv, why):
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    assert message(parse, *argv) == why


def test_conf_dataset_resolves_below_the_root(seed_root, tmp_path, monkeypatch):
    conf = tmp_path / "trial.conf"
    conf.write_text("[config]\nexperiment_name = trial\ndataset = sst2_pos\nmodel_name = tiny-random\n",
                    encoding="utf-8")
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    assert message(load_sweep, conf) == f"{conf}: data.root: expected with data.seed_dataset (the folder that " \
                                        f"holds the seed's data/ folder, or set ZS_DATA_ROOT)"
    sweep = load_sweep(conf, [], str(seed_root))
    assert sweep.data == seed_cfg("sst2_pos", seed_root)
    assert observed(load_splits(sweep.data))["test"] == expected("sst2_pos", "test")
    monkeypatch.setenv(DATA_ROOT_ENV, str(seed_root / "data"))
    assert load_sweep(conf).data == seed_cfg("sst2_pos", seed_root / "data")
    # sweep.predict / sweep.evaluate --config: the conf's dataset becomes --seed-dataset unless the line names data
    args = Namespace(data=None, data_dir=None, seed_dataset=None, config=str(conf))
    conf_dataset(args, {"dataset": "bea19"}, "--data")
    assert (args.data, args.seed_dataset) == (None, "bea19")


def test_a_missing_file_or_root_is_one_line(seed_root, tmp_path):
    level = seed_root / "data/fce_v1_tsv/fce-public.dev.original.tsv_sentencelevel"
    level.unlink()
    assert message(load_splits, seed_cfg("fce_v1", seed_root)) == \
        f"{level}: file not found (the seed's fce_v1 dev file)"
    nowhere = tmp_path / "nowhere"
    assert message(load_splits, seed_cfg("fce_v1", nowhere)) == \
        f"{nowhere}: data root not found (expected the folder that holds the seed's data/ folder)"
    (seed_root / "data/bea19/dev_indices_train_ABC.txt").unlink()
    assert message(load_splits, seed_cfg("bea19", seed_root)) == \
        f"{seed_root}/data/bea19/dev.tsv: file not found (the seed's bea19 dev file) (or dev_indices_train_ABC.txt " \
        f"beside it or in {seed_root} to carve dev from train)"


def test_bea19_indices_in_the_root_and_a_dev_file_of_its_own(seed_root):
    (seed_root / "data/bea19/dev_indices_train_ABC.txt").rename(seed_root / "dev_indices_train_ABC.txt")
    assert observed(load_splits(seed_cfg("bea19", seed_root))) == {s: expected("bea19", s) for s in FLAT}
    bea = seed_root / "data/bea19"
    write_pair(bea / "dev.tsv", bea / "dev.tsv_sentencelevel", SENTENCES[1:], "bea19", "dev", "i", "c")
    got = observed(load_splits(seed_cfg("bea19", seed_root)))  # a dev.tsv: nothing is carved
    assert got["train"] == ([f"bea19.train.{k}" for k in range(4)], [0, 1, 1, 1], [g for g, _ in BEA_TRAIN])
    assert got["dev"] == (["bea19.dev.0", "bea19.dev.1"], [1, 1], [(1, 0), (0, 0, 0)])


@pytest.mark.parametrize("inner", [True, False], ids=["bea19_folder", "root"])
@pytest.mark.parametrize("text, bad", [("[9, 0]\n", 9), ("[4, 1, 4]", 4)])
def test_bea19_index_past_train_names_the_indices_file(seed_root, inner, text, bad):
    (seed_root / "data/bea19/dev_indices_train_ABC.txt").unlink()
    path = (seed_root / "data/bea19" if inner else seed_root) / "dev_indices_train_ABC.txt"
    path.write_text(text, encoding="utf-8")
    assert message(load_splits, seed_cfg("bea19", seed_root)) == \
        f"{path}: names train sentence {bad} (counting from 0), but {seed_root}/data/bea19/train.tsv has 4 sentences"


@pytest.mark.parametrize("text", ["0, 1\n", "[0, 'a']", "[]", "[-1]", "[1.0]", "[0, 1", "", "{0: 1}", b"[0, \xff]"])
def test_bea19_malformed_indices_are_one_line(seed_root, text):
    path = seed_root / "data/bea19/dev_indices_train_ABC.txt"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert message(load_splits, seed_cfg("bea19", seed_root)) == \
        f"{path}: expected a list of train sentence indices like [23, 69, 79]"


@pytest.fixture
def folder(tmp_path) -> Path:
    """A data folder (labels c/i) with {split}.tsv and {split}.sentences.tsv."""
    for split in FLAT:
        write_pair(tmp_path / f"{split}.tsv", tmp_path / f"{split}.sentences.tsv", SENTENCES, "d", split, "i", "c")
    return tmp_path


def folder_cfg(path: Path) -> DataConfig:
    return DataConfig(dir=str(path), positive_labels=("i",))


def test_sentence_files_give_the_sentence_labels(folder):
    cfg = folder_cfg(folder)
    gold = [g for g, _ in SENTENCES]
    assert observed(load_splits(cfg)) == {s: ([f"d.{s}.{k}" for k in range(3)], [0, 1, 1], gold) for s in FLAT}
    prov = data_provenance(cfg)
    assert prov["data_sentence_labels"] == "sentence-level files"
    assert {k: v for k, v in prov.items() if k.startswith("data_sentences_sha256_")} == \
        {f"data_sentences_sha256_{s}": short_sha256(folder / f"{s}.sentences.tsv") for s in FLAT}
    (folder / "test.sentences.tsv").unlink()
    assert data_provenance(cfg)["data_sentence_labels"] == "sentence-level files: train, dev; any positive word: test"
    for split in FLAT:
        (folder / f"{split}.sentences.tsv").unlink(missing_ok=True)
    assert [s.label for s in load_splits(cfg)["train"]] == [1, 1, 0]  # any positive word
    prov = data_provenance(cfg)
    assert prov["data_sentence_labels"] == "any positive word"
    assert not [k for k in prov if k.startswith("data_sentences_sha256_")]


def test_sentence_file_word_mismatch_names_the_first_one(folder):
    level = folder / "dev.sentences.tsv"
    lines = level.read_text(encoding="utf-8").split("\n")
    assert lines[4] == "d.dev.1\ti"  # sentence 2's first word, line 5 (sentence 3's: line 8, typo'd too)
    lines[4], lines[7] = "d.dev.X\ti", "d.dev.Y\ti"
    level.write_text("\n".join(lines), encoding="utf-8")
    assert message(load_splits, folder_cfg(folder)) == \
        f"{level}:5: sentence 2 differs from the token file: 'd.dev.X' where {folder}/dev.tsv:5 has 'd.dev.1'"


def test_sentence_file_short_sentence_or_count_mismatch(folder):
    level = folder / "train.sentences.tsv"
    text = level.read_text(encoding="utf-8")
    level.write_text(text.replace("w2\tc\n\n", "\n", 1), encoding="utf-8")  # sentence 1 loses its last word
    assert message(load_splits, folder_cfg(folder)) == f"{level}:2: sentence 1 differs from the token file: " \
                                                       f"the end of the sentence where {folder}/train.tsv:3 has 'w2'"
    level.write_text(text.rsplit("\n\n", 1)[0], encoding="utf-8")  # the last sentence dropped
    assert message(load_splits, folder_cfg(folder)) == f"{level}: 2 sentences, but {folder}/train.tsv has 3"


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", DATA_ROOT_ENV: ""})


def test_predict_and_evaluate_a_seed_dataset_end_to_end(seed_root, tmp_path):
    data = ["--seed-dataset", "sst2_pos", "--data-root", str(seed_root), "--split", "test"]
    preds = tmp_path / "out" / "preds.tsv"
    done = run("sweep.predict", "--method", "random", *data, "--output", str(preds), "--device", "cpu", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert [line.split("\t")[0] for line in preds.read_text(encoding="utf-8").split("\n") if line][:3] == \
        ["sst2_pos.test.0", "w1", "w2"]
    done = run("sweep.evaluate", "--preds", str(preds), *data)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["gold"], out["n_tokens"], out["n_positive"]) == (f"sst2_pos@{seed_root}:test", 8, 2)
    prov = out["provenance"]
    assert (prov["data"], prov["data_positive_labels"], prov["data_sentence_labels"]) == \
        (f"sst2_pos@{seed_root}", "P", "sentence-level files")
    bad = run("sweep.evaluate", "--preds", str(preds), "--seed-dataset", "sst3", "--data-root", str(seed_root))
    assert bad.returncode == 2 and bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1 and "--seed-dataset" in bad.stderr and "'sst3'" in bad.stderr
    both = run("sweep.evaluate", "--preds", str(preds), "--gold", str(preds), *data)
    assert (both.returncode, both.stderr) == \
        (2, "error: --gold and --data/--data-dir/--seed-dataset: give one of them\n")
