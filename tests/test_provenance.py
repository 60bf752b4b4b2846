"""Every output row says where it came from: command, git state, versions, and the data with checksums."""
import hashlib
import json
import re

from sweep import evaluate
from sweep.common import command_line, provenance
from zs_core.config import DataConfig
from zs_core.provenance import data_provenance


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
