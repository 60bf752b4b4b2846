"""sweep.heads: model resolution, bad input (one line, exit 2, nothing written, Ray never started), any
encoder architecture, a checkpoint's soft-attention row, and the --smoke-test command end to end."""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import FNetConfig, FNetModel, RobertaConfig, RobertaModel

from sweep.heads import main, model_rows
from sweep.models import kept_checkpoints, resolve_models
from zs_core.checkpoint import save_checkpoint
from zs_core.config import DataConfig, build_config
from zs_core.data import load_splits
from zs_core.encoders import load_tokenizer
from zs_core.model import ZeroShotClassifier, build_model

ROOT = Path(__file__).resolve().parents[1]


def checkpoint(folder: Path, encoder=None) -> Path:
    """A sweep.run-style checkpoint of a soft-attention model (tiny-random encoder unless one is given)."""
    cfg = build_config({"model_name": "tiny-random", "soft_attention": True}, "test")
    model = build_model(cfg.model, seed=0) if encoder is None else ZeroShotClassifier(encoder, cfg.model)
    return save_checkpoint(folder, model, load_tokenizer("tiny-random"), cfg)


def bad_input(capsys, tmp_path: Path, *argv: str) -> str:
    out = tmp_path / "out"
    assert main([*argv, "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert not out.exists()
    ray = sys.modules.get("ray")
    assert ray is None or not ray.is_initialized()
    return err


def test_a_path_that_is_not_a_model(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    for path in ("empty", "notes.txt", "missing"):
        assert "not a model" in bad_input(capsys, tmp_path, "--model", str(tmp_path / path))


def test_a_checkpoint_without_attention_outputs(capsys, tmp_path):
    fnet = FNetModel(FNetConfig(vocab_size=load_tokenizer("tiny-random").vocab_size, hidden_size=32,
                                num_hidden_layers=1, intermediate_size=32))
    ckpt = checkpoint(tmp_path / "fnet", fnet)
    assert "no attention outputs" in bad_input(capsys, tmp_path, "--model", str(ckpt))


def test_a_split_that_does_not_exist(capsys, tmp_path):
    assert "no such split" in bad_input(capsys, tmp_path, "--model", "tiny-random", "--split", "validation")


def test_a_dev_split_without_positive_token(capsys, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.tsv").write_text("a\tc\nb\ti\n")
    (data / "dev.tsv").write_text("a\tc\nb\tc\n\nc\tc\n")
    (data / "test.tsv").write_text("a\tc\nb\ti\n")
    err = bad_input(capsys, tmp_path, "--model", "tiny-random", "--data-dir", str(data), "--positive-labels", "i")
    assert "dev split has no positive token: no threshold can be calibrated" in err


def test_a_pooling_not_in_the_list(capsys, tmp_path):
    assert "unknown pooling 'mean'" in bad_input(capsys, tmp_path, "--model", "tiny-random", "--pooling",
                                                 "received,mean")


def test_sweep_folder_gives_its_kept_checkpoints(tmp_path):
    sweep = tmp_path / "sweep"
    kept = checkpoint(sweep / "trial_a" / "checkpoint")
    checkpoint(sweep / "trial_b" / "checkpoint")
    pd.DataFrame({"trial_id": ["a", "b"], "checkpoint": [str(kept), None]}).to_parquet(sweep / "leaderboard.parquet")
    assert kept_checkpoints(sweep) == [kept.resolve()]
    (sweep / "leaderboard.parquet").unlink()  # no leaderboard: every checkpoint below the folder
    assert len(kept_checkpoints(sweep)) == 2
    names = resolve_models(["tiny-random", str(kept), str(sweep)])
    assert list(names.values())[:2] == ["tiny-random", str(kept)] and len(names) == 3


def test_checkpoint_rows_hold_every_head_soft_attention_and_random(tmp_path):
    ckpt = str(checkpoint(tmp_path / "ckpt"))
    data = load_splits(DataConfig(limit={"dev": 16, "test": 16}), ("dev", "test"))
    seen = []
    rows = pd.DataFrame(model_rows(ckpt, "ckpt", data, "test", ("received", "cls"), 8, "cpu",
                                   lambda *a: seen.append(a)))
    assert seen == [("dev", 8, 16), ("dev", 16, 16), ("test", 8, 16), ("test", 16, 16)]
    heads = rows[rows["method"] == "head"]
    assert len(heads) == 2 * 2 * 4 and set(heads["pooling"]) == {"received", "cls"}
    assert (heads["threshold_kind"] == "dev_calibrated").all() and heads["layer"].notna().all()
    others = rows[rows["method"] != "head"].set_index(["method", "threshold_kind"])
    assert sorted(others.index) == [("random", "dev_calibrated"), ("random", "fixed"),
                                    ("soft_attention", "dev_calibrated"), ("soft_attention", "fixed")]
    assert others["pooling"].isna().all() and others["layer"].isna().all()
    assert others.loc[("soft_attention", "fixed"), "threshold"] == 0.5
    assert (rows["model"] == "ckpt").all() and (rows["n_sentences"] == 16).all()
    assert rows[["map", "f1", "precision", "recall", "f05", "auroc"]].apply(lambda c: c.between(0, 1)).all().all()


def test_roberta_folder_layers_and_heads_come_from_its_config(tmp_path, tokenizer, dev_sentences, brute_force_map):
    config = RobertaConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=3,
                           num_attention_heads=2, intermediate_size=64, max_position_embeddings=514,
                           pad_token_id=tokenizer.pad_token_id)
    folder = tmp_path / "roberta"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # fixed weights: the parity check below is then the same every run
        RobertaModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (path, name), = resolve_models([str(folder)]).items()
    sents = dev_sentences(10)  # conftest, as brute_force_map
    rows = pd.DataFrame(model_rows(path, name, {"dev": sents, "test": sents}, "test", ("received", "cls"), 4))
    heads = rows[rows["layer"].notna()].sort_values(["pooling", "layer", "head"], ascending=[False, True, True])
    assert sorted(set(heads["layer"])) == [0, 1, 2] and sorted(set(heads["head"])) == [0, 1]
    from zs_core.encoders import load_encoder

    expected = brute_force_map(load_encoder(path, attentions=True), load_tokenizer(path), sents).ravel()
    np.testing.assert_allclose(heads["map"].to_numpy(), expected, atol=1e-6)


@pytest.mark.slow
def test_smoke_test_end_to_end(smoke_heads):
    proc, out = smoke_heads  # conftest: sweep.heads --smoke-test
    assert "Top 10 heads by MAP" in proc.stdout and "Ray dashboard: http" in proc.stdout
    # a quiet terminal: the scan's own lines, no Tune table or per-checkpoint line
    assert "tiny-random: test, 32/32 sentences" in proc.stdout and "tiny-random: 16 heads scanned" in proc.stdout
    assert "RUNNING" not in proc.stdout and "Checkpoint successfully created" not in proc.stdout + proc.stderr
    frame = pd.read_parquet(out / "heads.parquet")
    for column in ("model", "split", "method", "layer", "head", "pooling", "threshold_kind", "map", "f1",
                   "precision", "recall", "f05", "threshold", "auroc", "corr", "n_sentences", "git_sha", "created_at",
                   "version_torch"):
        assert column in frame.columns, column
    assert len(frame) == 2 * 2 * 4 + 2 and list(frame["method"].iloc[-2:]) == ["random", "random"]
    assert (frame["split"] == "test").all() and (frame["n_sentences"] == 32).all()
    import matplotlib.image

    image = matplotlib.image.imread(out / "heads.png")
    assert image.shape[0] > 200 and image.shape[1] > 400 and image[..., :3].std() > 0
