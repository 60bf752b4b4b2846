"""Every output row says where it came from: command, git state, versions, and the data with checksums."""
import hashlib
import json
import re

from sweep import evaluate
from sweep.common import command_line, provenance
from zs_core.config import DataConfig
from zs_core.data import load_splits
from zs_core.provenance import data_provenance, limit_notices


def write_split(path, rows):
    path.write_text("".join(f"{w}\t{x}\n" for w, x in rows) + "\n", encoding="utf-8")
    return path


def test_provenance_names_command_git_versions_and_each_data_file(tmp_path):
    for split in ("train", "dev", "test"):
        write_split(tmp_path / f"{split}.tsv", [("a", "i"), (split, "c")])
    spec = DataConfig(dir=str(tmp_path), positive_labels=("i",), limit={"train": 3})
    stamp = provenance("python -m sweep.heads --model x", spec, ("dev", "test"))
    assert stamp["command"] == "python -m sweep.heads --model x"
    assert re.fullmatch(r"[0-9a-f]{40}", stamp["git_sha"]) and stamp["git_dirty"] in ("true", "false")
    assert stamp["version_torch"].startswith("2.13.0") and stamp["created_at"][:2] == "20"
    assert (stamp["data"], stamp["data_positive_labels"]) == (str(tmp_path), "i")
    assert (stamp["data_limit"], stamp["data_sample"]) == ('{"train": 3}', "{}")
    for split in ("dev", "test"):
        digest = hashlib.sha256((tmp_path / f"{split}.tsv").read_bytes()).hexdigest()
        assert stamp[f"data_sha256_{split}"] == digest[:12]
    assert "data_sha256_train" not in stamp  # only the files this output read
    named = data_provenance(DataConfig(), ("train", "test"))
    assert named["data"] == "wnut16" and named["data_sha256_train"] == named["data_sha256_test"]  # one file


def test_command_line_quotes_as_typed():
    assert command_line("sweep.run", ["a b.yaml", "x=1"]) == "python -m sweep.run 'a b.yaml' x=1"


def test_evaluate_json_carries_provenance_and_the_files_it_read(tmp_path, capsys):
    gold = write_split(tmp_path / "g.tsv", [("a", "i"), ("b", "c")])
    preds = write_split(tmp_path / "p.tsv", [("a", 0.9), ("b", 0.2)])
    assert evaluate.main(["--preds", str(preds), "--gold", str(gold), "--positive-labels", "i"]) == 0
    out = json.loads(capsys.readouterr().out)
    stamp = out["provenance"]
    assert stamp["command"].startswith("python -m sweep.evaluate --preds ")
    assert stamp["data"] == str(gold) and stamp["data_sha256_test"] == hashlib.sha256(gold.read_bytes()).hexdigest()[:12]
    assert out["preds_sha256"] == hashlib.sha256(preds.read_bytes()).hexdigest()[:12]


def write_sentences(path, labels):
    """One two-word sentence per label; positive sentences hold an ``i``."""
    path.write_text("".join(f"w{k}\t{'i' if y else 'c'}\nx\tc\n\n" for k, y in enumerate(labels)), encoding="utf-8")


def test_a_limit_on_a_file_ordered_by_label_is_noticed(tmp_path):
    write_sentences(tmp_path / "train.tsv", [1] * 20 + [0] * 20)  # ordered: the first 20 are all positive
    write_sentences(tmp_path / "dev.tsv", [1, 0] * 20)             # mixed: its first 20 are half positive
    write_sentences(tmp_path / "test.tsv", [1, 0])
    notices = {}
    for limit, sample in (({"train": 20, "dev": 20}, None), ({"train": 20}, {"train": 4}), ({"train": 60}, None),
                          ({"train": 6}, None)):
        cfg = DataConfig(dir=str(tmp_path), positive_labels=("i",), limit=limit, sample=sample)
        whole = load_splits(DataConfig(dir=str(tmp_path), positive_labels=("i",)))
        notices[str((limit, sample))] = limit_notices(cfg, load_splits(cfg), whole)
    assert list(notices.values()) == [
        ["notice: data.limit.train: the first 20 train sentences are 100.0% positive, the whole split 50.0% "
         "(is the file ordered by label?); data.sample.train takes a fixed random 20 instead"],  # dev's are mixed
        [],  # a sample is drawn from the limit: not "the first N"
        [],  # the limit holds the whole split
        [],  # 6 sentences all positive: 3 standard errors of a random 6 are 61 points
    ]


def test_sweep_run_prints_the_notice_before_it_starts(tmp_path, capsys, monkeypatch):
    """sweep.run's driver path up to Ray (run_sweep, which starts Ray, records its call instead)."""
    from sweep import run

    for split, labels in (("train", [1] * 20 + [0] * 20), ("dev", [1, 0]), ("test", [1, 0])):
        write_sentences(tmp_path / f"{split}.tsv", labels)
    space = tmp_path / "s.yaml"
    space.write_text(f"name: s\ndata: {{dir: {tmp_path}, positive_labels: [i], limit: {{train: 20}}}}\n"
                     "fixed: {model_name: tiny-random}\n", encoding="utf-8")
    started = []
    monkeypatch.setattr(run, "run_sweep", lambda sweep, splits, out, args: started.append(len(splits["train"])) or 0)
    assert run.main([str(space), "--output", str(tmp_path / "out")]) == 0
    assert started == [20]
    assert "notice: data.limit.train: the first 20 train sentences are 100.0% positive, the whole split 50.0%" \
        in capsys.readouterr().out
