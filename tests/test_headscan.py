"""zs_core.headscan: exact per-sentence AP, threshold counts, AUROC, streaming, and parity with a brute force
over transformers' own output_attentions (one head at a time, sklearn per sentence)."""
import numpy as np
import pytest
import torch
from reference_metrics import token_metrics
from sklearn.metrics import average_precision_score, roc_auc_score

from zs_core.batching import encode
from zs_core.evaluation import method_rows
from zs_core.headscan import MAX_CELLS, HeadAccumulator, encode_in_chunks, length_batches, scan_split, threshold_grid

POOLINGS = ("received", "cls")


def random_batch(seed: int, b: int = 9, shape=(2, 2, 3), width: int = 8, decimals: int = 1):
    """Scores with many ties (rounded), some negative; gold lists of varied length."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, width + 1, b)
    golds = [rng.integers(0, 2, n).tolist() for n in lengths]
    scores = np.round(rng.random((b, *shape, width)) * 1.2 - 0.1, decimals)
    return torch.tensor(scores, dtype=torch.float32), golds


def per_head(scores: torch.Tensor, golds, index) -> list[np.ndarray]:
    """One head's word-score lists, as float64 (what sklearn sees)."""
    return [scores[(b, *index)][: len(g)].double().numpy() for b, g in enumerate(golds)]


def test_average_precision_equals_sklearn_per_sentence_with_ties():
    scores, golds = random_batch(0)
    acc = HeadAccumulator(2, 2, 3)
    acc.update(scores, golds)
    for index in np.ndindex(2, 2, 3):
        aps = [average_precision_score(g, np.maximum(s, 0)) for g, s in zip(golds, per_head(scores, golds, index))
               if any(g)]
        assert acc.map()[index] == pytest.approx(np.mean(aps), abs=1e-12)
    assert acc.n_with_positive == sum(any(g) for g in golds) and acc.n_sentences == len(golds)


def test_calibration_and_counts_are_exact_on_the_grid():
    scores, golds = random_batch(1, decimals=2)
    grid = np.linspace(0, 1, 21)
    acc = HeadAccumulator(2, 2, 3, thresholds=grid)
    acc.update(scores, golds)
    thresholds = acc.calibrate()
    metrics = acc.metrics_at(thresholds)
    for head in np.ndindex(2, 2, 3):
        lists = per_head(scores, golds, head)
        f1 = [token_metrics(golds, lists, threshold=t)["f1"] for t in grid]
        assert thresholds[head] == grid[len(grid) - 1 - int(np.argmax(f1[::-1]))]  # best F1, ties: highest
        exact = token_metrics(golds, lists, threshold=thresholds[head])
        for key in ("precision", "recall", "f1", "f05"):
            assert metrics[key][head] == pytest.approx(exact[key], abs=1e-12)
    with pytest.raises(ValueError, match="grid"):
        acc.metrics_at(np.full((2, 2, 3), 0.123))


def test_auroc_exact_when_scores_sit_on_the_grid_and_within_bound_otherwise():
    scores, golds = random_batch(2)  # float32 multiples of 0.1: each its own bin of the same float32 grid
    grid = np.round(np.linspace(-0.1, 1.1, 13), 1).astype(np.float32).astype(np.float64)
    acc = HeadAccumulator(2, 2, 3, thresholds=grid)
    acc.update(scores, golds)
    auc = acc.auroc()
    coarse = HeadAccumulator(2, 2, 3, thresholds=np.linspace(0, 1, 4))
    coarse.update(scores, golds)
    rough, bound = coarse.auroc_with_bound()
    y = np.concatenate(golds)
    for head in np.ndindex(2, 2, 3):
        exact = roc_auc_score(y, np.concatenate(per_head(scores, golds, head)))
        assert auc[head] == pytest.approx(exact, abs=1e-12)
        assert abs(rough[head] - exact) <= bound[head] + 1e-12 and bound[head] > 0


def test_corr_equals_scipy_pearson_of_clipped_scores_streamed():
    from scipy.stats import pearsonr

    scores, golds = random_batch(5, b=12, decimals=3)  # some scores negative: clipped to 0 as in the seed
    acc = HeadAccumulator(2, 2, 3)
    for start in range(0, 12, 5):
        acc.update(scores[start:start + 5], golds[start:start + 5])
    y = np.concatenate(golds)
    for head in np.ndindex(2, 2, 3):
        exact = pearsonr(y, np.maximum(np.concatenate(per_head(scores, golds, head)), 0))[0]
        assert acc.corr()[head] == pytest.approx(exact, abs=1e-9)
    flat = HeadAccumulator(1, 1, 1)
    flat.update(torch.full((2, 1, 1, 1, 3), 0.3), [[0, 1, 0], [1, 0]])
    assert flat.corr().item() == 0.0  # constant scores: the seed's 0


def test_streaming_equals_one_update():
    scores, golds = random_batch(3, b=12, decimals=3)
    whole, parts = HeadAccumulator(2, 2, 3), HeadAccumulator(2, 2, 3)
    whole.update(scores, golds)
    for start in range(0, 12, 5):
        width = max(len(g) for g in golds[start:start + 5])  # each batch as narrow as its longest sentence
        parts.update(scores[start:start + 5, ..., :width], golds[start:start + 5])
    np.testing.assert_allclose(parts.map(), whole.map(), atol=1e-12)
    assert (parts.calibrate() == whole.calibrate()).all()
    for a, b in zip(parts.counts(), whole.counts()):
        np.testing.assert_array_equal(a, b)


def test_grid_is_ascending_and_spans_attention_values():
    grid = threshold_grid()
    assert grid[0] == 0.0 and grid[-1] == 1.0 and (np.diff(grid) > 0).all()
    with pytest.raises(ValueError):
        HeadAccumulator(1, 1, 1, thresholds=[0.5, 0.1])


def test_no_positive_token_cannot_be_calibrated():
    acc = HeadAccumulator(1, 1, 1)
    acc.update(torch.rand(2, 1, 1, 1, 3), [[0, 0, 0], [0, 0]])
    assert np.isnan(acc.calibrate()).all() and np.isnan(acc.metrics_at(acc.calibrate())["f1"]).all()


def test_length_batches_cap_sentences_and_attention_cells(tokenizer, dev_sentences):
    sents = dev_sentences(40)
    items, _ = encode(sents, tokenizer, 128)
    assert encode_in_chunks(sents, tokenizer, 128, chunk=7) == (items, 0)
    assert encode_in_chunks(sents, tokenizer, 128, True, 7) == encode(sents, tokenizer, 128, lowercase=True)
    batches = length_batches(items, 8, max_cells=4000)
    assert sorted(i for b in batches for i in b) == list(range(len(items)))
    for b in batches:
        longest = max(len(items[i].input_ids) for i in b)
        assert len(b) <= 8 and (len(b) == 1 or len(b) * longest ** 2 <= 4000)
    assert [len(b) for b in length_batches(items, 8, None)] == [8] * 5


# --- parity with transformers' output_attentions -------------------------------------------------

def scan(encoder, tokenizer, sents, batch_size, max_cells=MAX_CELLS):
    items, _ = encode(sents, tokenizer, 128)
    return scan_split(encoder, tokenizer, items, [list(s.gold) for s in sents], batch_size, "cpu", POOLINGS,
                      max_cells=max_cells)


@pytest.mark.parametrize("fixture,n", [("tiny_eager", 12), ("minilm_eager", 6)])
def test_parity_with_output_attentions(request, tokenizer, dev_sentences, brute_force_map, fixture, n):
    encoder = request.getfixturevalue(fixture)  # conftest: tiny-random / minilm, eager attention
    sents = dev_sentences(n)
    acc = scan(encoder, tokenizer, sents, batch_size=4)
    np.testing.assert_allclose(acc.map(), brute_force_map(encoder, tokenizer, sents), atol=1e-6)


def test_streaming_batches_of_two_equal_one_batch(tiny_eager, tokenizer, dev_sentences):
    encoder = tiny_eager
    sents = dev_sentences(20)
    small, whole = scan(encoder, tokenizer, sents, 2), scan(encoder, tokenizer, sents, len(sents), None)
    np.testing.assert_allclose(small.map(), whole.map(), atol=1e-6)
    rows_small = method_rows("head", small, fixed=None, dev_thresholds=small.calibrate())
    rows_whole = method_rows("head", whole, fixed=None, dev_thresholds=whole.calibrate())
    assert len(rows_small) == len(rows_whole) == 2 * 2 * 4 and rows_small[5]["pooling"] == "received"
    for a, b in zip(rows_small, rows_whole):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == (b[key] if isinstance(b[key], str) or b[key] is None else pytest.approx(b[key], abs=1e-6))
