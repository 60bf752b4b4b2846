"""sweep.report_data's pure parts: model labels, word colours, line wrapping, the shaded example rows and the
head choice from hand-made heads.parquet rows."""
import pandas as pd
import pytest

from sweep.leaderboard import model_label
from sweep.report_data import Examples, HeadChoice, choose_head, chunks, head_from_files, scale, shade, shaded
from zs_core.data import Sentence

TRIAL = "/runs/fce/final/tune/train_trial_0e5cf_00000_0_seed=9_2026-11-25_17-59-45"


@pytest.mark.parametrize("given, label", [
    ("tiny-random", "tiny-random"),
    ("minilm", "minilm"),
    (f"{TRIAL}/checkpoint_000000", "0e5cf_00000"),
    (f"{TRIAL}/checkpoint_000003/", "0e5cf_00000"),
    (TRIAL, "0e5cf_00000"),
    ("runs/x/tune/train_trial_72acb_00001_1_attend_sep=False,seed=1_2026-11-25_18-16-11/checkpoint_000000",
     "72acb_00001"),
    ("s3://bucket/exp/train_trial_4b38d_00009_9_seed=1_2026-11-25_18-16-11/checkpoint_000000", "4b38d_00009"),
    ("/models/my-encoder", "my-encoder"),
    ("/models/my-encoder/", "my-encoder"),
    ("/tmp/marker/checkpoint", "checkpoint"),
    ("/tmp/somewhere/checkpoint_000002", "somewhere/checkpoint_000002"),
    ("/data/train_trial_notes", "train_trial_notes"),
])
def test_model_label(given, label):
    assert model_label(given) == label


def test_scale_runs_from_the_lowest_score_or_from_zero_when_signed():
    assert scale([0.2, 0.5, 1.0]) == (0.2, pytest.approx(0.8))  # all >= 0: lowest to highest
    assert scale([-0.5, 0.25, 1.0]) == (0.0, 1.0)                 # signed: 0 stays white, largest |score|
    assert scale([float("nan"), float("inf"), 0.5]) == (0.5, 0.0)  # only finite scores count
    assert scale([]) == (0.0, 0.0)


def test_shade_is_red_above_blue_below_and_transparent_without_a_span():
    assert shade(1.0, 0.0, 1.0) == "rgba(214,39,40,0.800)"
    assert shade(0.5, 0.0, 1.0) == "rgba(214,39,40,0.400)"
    assert shade(-2.0, 0.0, 1.0) == "rgba(31,119,180,0.800)"  # past the span: capped
    assert shade(0.0, 0.0, 1.0) == "rgba(214,39,40,0.000)"
    assert shade(0.3, 0.3, 0.0) == "transparent"
    assert shade(float("nan"), 0.0, 1.0) == "transparent"


def test_chunks_wrap_long_sentences_and_keep_every_word():
    words = tuple(f"word{i:02d}" for i in range(40))  # 6 characters + 2 each: 13 fit in 110
    parts = chunks(words)
    assert [len(p) for p in parts] == [13, 13, 13, 1]
    assert [i for p in parts for i in p] == list(range(40))
    assert chunks(("x" * 300, "y")) == [range(0, 1), range(1, 2)]  # one long word still gets its own piece
    assert chunks(()) == [range(0, 0)]


def test_shaded_rows_gold_first_then_each_method():
    sentence = Sentence(words=("a", "zebra", "sat"), labels=(0.0, 1.0, 0.0))
    examples = Examples([sentence], [0.91234], {"soft attention": [[0.1, 0.7, 0.1]], "LIME": [[-0.5, 1.0, 0.0]]})
    [example] = shaded(examples)
    assert (example["prob"], example["n_gold"], example["n_words"]) == ("0.912", 1, 3)
    [rows] = example["parts"]
    assert [r["name"] for r in rows] == ["gold", "soft attention", "LIME"]
    assert [c["gold"] for c in rows[0]["cells"]] == [False, True, False]
    assert rows[0]["range"] == "" and all(c["background"] == "" for c in rows[0]["cells"])
    assert rows[1]["range"] == "0.1 to 0.7"
    assert [c["background"] for c in rows[1]["cells"]] == ["rgba(214,39,40,0.000)", "rgba(214,39,40,0.800)",
                                                          "rgba(214,39,40,0.000)"]
    assert rows[2]["cells"][0]["background"].startswith("rgba(31,119,180,") and rows[2]["cells"][1]["score"] == "1"


def heads_frame(rows: list[tuple]) -> pd.DataFrame:
    """heads.parquet rows in its schema; rows: (model, split, method, layer, head, pooling, map)."""
    frame = pd.DataFrame(rows, columns=["model", "split", "method", "layer", "head", "pooling", "map"])
    frame["layer"], frame["head"] = frame["layer"].astype("Int64"), frame["head"].astype("Int64")
    frame["threshold_kind"] = "dev_calibrated"
    frame["f1"] = frame["map"] / 2
    return frame


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "tune" / "train_trial_0e5cf_00000_0_seed=9_2026-11-25_17-59-45" / "checkpoint_000000"
    path.mkdir(parents=True)
    return path


def test_choose_head_prefers_this_checkpoint_then_its_encoder(checkpoint, tmp_path):
    ckpt = str(checkpoint)
    rows = heads_frame([
        (ckpt, "test", "head", 0, 1, "cls", 0.40), (ckpt, "test", "head", 1, 0, "received", 0.55),
        (ckpt, "test", "soft_attention", None, None, None, 0.90), (ckpt, "test", "random", None, None, None, 0.95),
        ("minilm", "test", "head", 2, 3, "cls", 0.80), ("other", "test", "head", 3, 3, "cls", 0.99)])
    choice = choose_head(rows, checkpoint, "minilm", explicit=False)
    assert choice == HeadChoice(1, 0, "received", "best test MAP (0.550), scanned on this checkpoint")
    # the same checkpoint named by another spelling of its path still counts as this checkpoint
    relative = rows.assign(model=rows["model"].str.replace(str(tmp_path), str(tmp_path / "tune" / "..")))
    assert choose_head(relative, checkpoint, "minilm", False).layer == 1
    without = rows[rows["model"] != ckpt]
    assert choose_head(without, checkpoint, "minilm", False) == HeadChoice(
        2, 3, "cls", "best test MAP (0.800), scanned on minilm")
    assert choose_head(without, checkpoint, "tiny-random", False) is None
    assert choose_head(without, checkpoint, "tiny-random", explicit=True) == HeadChoice(
        3, 3, "cls", "best test MAP (0.990), scanned on the model named in the file")


def test_choose_head_lets_dev_decide_and_skips_missing_maps(checkpoint):
    ckpt = str(checkpoint)
    rows = heads_frame([(ckpt, "test", "head", 0, 0, "cls", 0.90), (ckpt, "dev", "head", 0, 0, "cls", 0.30),
                        (ckpt, "dev", "head", 1, 1, "received", 0.60), (ckpt, "dev", "head", 1, 0, "cls", None)])
    assert choose_head(rows, checkpoint, "minilm", False) == HeadChoice(
        1, 1, "received", "best dev MAP (0.600), scanned on this checkpoint")


def test_choose_head_without_head_rows_is_none(checkpoint):
    assert choose_head(pd.DataFrame(), checkpoint, "minilm", True) is None
    only_baselines = heads_frame([("minilm", "test", "random", None, None, None, 0.2),
                                  ("minilm", "test", "soft_attention", None, None, None, 0.5)])
    assert choose_head(only_baselines, checkpoint, "minilm", True) is None
    assert choose_head(only_baselines.drop(columns=["layer"]), checkpoint, "minilm", True) is None


def test_head_from_files_names_the_file(checkpoint, tmp_path):
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    heads_frame([("minilm", "test", "head", 0, 0, "cls", 0.3)]).to_parquet(first)
    heads_frame([(str(checkpoint), "test", "head", 1, 1, "received", 0.2)]).to_parquet(second)
    choice = head_from_files([first, second], checkpoint, "minilm", False)
    assert choice == HeadChoice(1, 1, "received", f"best test MAP (0.200) in {second}, scanned on this checkpoint")
    assert head_from_files([], checkpoint, "minilm", True) is None
