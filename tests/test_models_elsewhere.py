"""A trained model outside sweep.run: sweep.predict and sweep.report take a sweep output folder (its best kept
checkpoint, or --trial's), a checkpoint's encoder loads with transformers alone and the whole classifier with
zs_core.inference, and sweep.predict --text scores plain text. The sweep folder is sweep.smoke's (no Ray)."""
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from sweep import predict, report
from sweep.models import checkpoint_of
from sweep.smoke import SMOKE_TRIAL, smoke_sweep
from zs_core.inference import load_classifier, score_words

TEXT = "Barack Obama visited Paris\n\n  the cat sat on the mat  \n"


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory):
    return smoke_sweep(tmp_path_factory.mktemp("models"))


def run(capsys, main, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_sweep_folder_names_its_best_kept_checkpoint_or_a_trials(sweep_folder, capsys):
    kept = checkpoint_of(str(sweep_folder))
    assert kept.endswith("checkpoint_000000") and SMOKE_TRIAL in kept
    assert checkpoint_of(str(sweep_folder), SMOKE_TRIAL) == kept and checkpoint_of(kept) == kept
    code, out, err = run(capsys, predict.main, "--model", sweep_folder, "--trial", "abcde_00001", "--text", "-")
    assert code == 2 and out == ""
    assert err == f"error: --trial abcde_00001: {sweep_folder} kept no checkpoint of that trial; it kept {SMOKE_TRIAL}\n"


def test_the_encoder_loads_with_transformers_and_the_classifier_with_zs_core(sweep_folder):
    from pathlib import Path

    from transformers import AutoModel, AutoTokenizer

    ckpt = Path(checkpoint_of(str(sweep_folder)))
    encoder, tokenizer = AutoModel.from_pretrained(ckpt / "encoder"), AutoTokenizer.from_pretrained(ckpt / "encoder")
    model, _, cfg = load_classifier(ckpt)
    batch = tokenizer(["a short sentence"], return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(encoder(**batch).last_hidden_state, model.encoder(**batch).last_hidden_state, atol=1e-6)
    (prob, scores), = score_words(model, tokenizer, cfg, [["a", "short", "sentence"]])
    assert 0 < prob < 1 and len(scores) == 3 and all(0 <= s <= 1 for s in scores)


def test_predict_text_scores_each_line_of_a_file_as_json_lines(sweep_folder, tmp_path, capsys):
    text = tmp_path / "new.txt"
    text.write_text(TEXT, encoding="utf-8")
    code, out, err = run(capsys, predict.main, "--model", sweep_folder, "--text", text)
    assert code == 0 and "its best kept checkpoint" in err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["words"] for r in rows] == [["Barack", "Obama", "visited", "Paris"], ["the", "cat", "sat", "on", "the", "mat"]]
    model, tokenizer, cfg = load_classifier(checkpoint_of(str(sweep_folder)))
    expected = score_words(model, tokenizer, cfg, [r["words"] for r in rows])
    for row, (prob, scores) in zip(rows, expected):
        assert row["prob"] == pytest.approx(prob) and row["scores"] == pytest.approx(scores)


def test_predict_text_writes_tsv_with_the_sentence_probability_and_reads_stdin(sweep_folder, tmp_path, capsys,
                                                                               monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(TEXT))
    out = tmp_path / "scores.tsv"
    code, _, _ = run(capsys, predict.main, "--model", sweep_folder, "--trial", SMOKE_TRIAL, "--text", "-",
                     "--output", out)
    blocks = out.read_text(encoding="utf-8").split("\n\n")
    assert code == 0 and len(blocks) == 2
    head, *words = blocks[0].splitlines()
    assert head.startswith("# sentence_prob = 0.") and [w.split("\t")[0] for w in words] == ["Barack", "Obama",
                                                                                            "visited", "Paris"]
    assert all(0 <= float(w.split("\t")[1]) <= 1 for w in words)


def test_predict_text_refuses_data_arguments_and_an_empty_file(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n", encoding="utf-8")
    assert run(capsys, predict.main, "--method", "random", "--text", empty)[2] == \
        f"error: --text {empty}: no sentence in it (one sentence per line)\n"
    assert run(capsys, predict.main, "--method", "random", "--text", empty, "--data", "wnut16")[2] == \
        "error: --text and --data: --text scores the sentences of its file; leave out --data\n"


def test_report_takes_a_trial_of_the_sweep_or_names_the_kept_ones(sweep_folder, capsys):
    code, out, _ = run(capsys, report.main, sweep_folder, "--trial", SMOKE_TRIAL, "--examples", "1",
                       "--lime-samples", "0")
    page = (sweep_folder / "report.html").read_text(encoding="utf-8")
    assert code == 0 and f'<code title="{checkpoint_of(str(sweep_folder))}">{SMOKE_TRIAL}</code>' in page
    code, _, err = run(capsys, report.main, sweep_folder, "--trial", "abcde_00001")
    assert code == 2 and err == f"error: --trial abcde_00001: no sweep here kept a checkpoint of that trial; kept: " \
                                f"{SMOKE_TRIAL}\n"
