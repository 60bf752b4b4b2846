"""zs_core.batching: word <-> piece alignment, truncation counts, padding, batch order, word masking."""
import pytest
import torch

from zs_core.batching import NO_WORD, Encoded, batches, collate, encode, first_piece_mask, mask_words, pieces_to_words
from zs_core.data import Sentence

SPLIT_WORDS = ("unbelievably", "tokenization", "@paulwalk", "#hashtag")
# minilm WordPiece: un ##bel ##ie ##va ##bly | token ##ization | @ paul ##walk | # hash ##tag
SPLIT_PIECES = [5, 2, 3, 3]
CLS, SEP, PAD = 101, 102, 0


def sent(words, gold=None) -> Sentence:
    return Sentence(tuple(words), None if gold is None else tuple(float(x) for x in gold))


def word_ids(tokenizer, words, **kwargs) -> list[int]:
    """The tokenizer's own alignment, special tokens as NO_WORD."""
    enc = tokenizer(list(words), is_split_into_words=True, **kwargs)
    return [NO_WORD if w is None else w for w in enc.word_ids()]


# --- encode -------------------------------------------------------------------------------------

def test_encode_aligns_multi_piece_words(tokenizer):
    (item,), truncated = encode([sent(SPLIT_WORDS, [0, 0, 1, 0])], tokenizer, 128)
    assert truncated == 0
    assert item.word_index == [-1, 0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 3, -1]
    assert item.word_index == word_ids(tokenizer, SPLIT_WORDS)
    assert [item.word_index.count(w) for w in range(4)] == SPLIT_PIECES
    assert tokenizer.convert_ids_to_tokens(item.input_ids[8:11]) == ["@", "paul", "##walk"]
    assert item.input_ids[0] == CLS and item.input_ids[-1] == SEP
    assert (item.n_words, item.label, item.targets) == (4, 1.0, None)


def test_encode_batch_keeps_order_labels_and_targets(tokenizer):
    sentences = [sent(["ok"], [0]), sent(SPLIT_WORDS, [1, 0, 0, 0]), sent(["a", "b"])]
    items, truncated = encode(sentences, tokenizer, 128, targets=[[0.5], [1, 0, 0, 2], [0.25, 0]])
    assert truncated == 0
    assert [e.n_words for e in items] == [1, 4, 2]
    assert [e.label for e in items] == [0.0, 1.0, 0.0]  # an unlabelled sentence gets 0
    assert [e.targets for e in items] == [[0.5], [1.0, 0.0, 0.0, 2.0], [0.25, 0.0]]
    assert all(type(t) is float for t in items[1].targets)
    for e, s in zip(items, sentences):
        assert e.word_index == word_ids(tokenizer, s.words)
        assert e.input_ids == tokenizer(list(s.words), is_split_into_words=True)["input_ids"]


def test_encode_nothing():
    assert encode([], None, 128) == ([], 0)


@pytest.mark.parametrize("max_len, kept_pieces, cut", [
    (15, [5, 2, 3, 3], 0),  # [CLS] + 13 pieces + [SEP]: all fit exactly
    (14, [5, 2, 3, 2], 0),  # last word loses a piece but keeps its first: scored, not cut
    (12, [5, 2, 3], 1),     # "#hashtag" gone
    (9, [5, 2], 2),         # "@paulwalk" and "#hashtag" gone
    (8, [5, 1], 2),         # "tokenization" keeps "token"
    (7, [5], 3),
    (3, [1], 3),            # "un" only
])
def test_truncation_counts_cut_off_words_exactly(tokenizer, max_len, kept_pieces, cut):
    (item,), truncated = encode([sent(SPLIT_WORDS)], tokenizer, max_len)
    assert len(item.input_ids) == min(max_len, 15)
    assert item.input_ids[-1] == SEP
    assert [item.word_index.count(w) for w in range(4)] == kept_pieces + [0] * (4 - len(kept_pieces))
    assert item.word_index == word_ids(tokenizer, SPLIT_WORDS, truncation=True, max_length=max_len)
    assert truncated == cut
    assert item.n_words == 4  # cut-off words still count as words (they score 0)


def test_truncation_counts_add_up_over_sentences(tokenizer):
    sentences = [sent(SPLIT_WORDS), sent(["short"]), sent(list(SPLIT_WORDS) + ["x", "y"])]
    _, truncated = encode(sentences, tokenizer, 9)
    assert truncated == 2 + 0 + 4


def test_word_without_pieces_is_not_counted_as_truncated(tokenizer):
    assert tokenizer.tokenize("\u200b") == []
    (item,), truncated = encode([sent(["fine", "\u200b"])], tokenizer, 128)
    assert item.word_index == [-1, 0, -1]
    assert truncated == 0


# --- pieces_to_words ----------------------------------------------------------------------------

def test_pieces_to_words_is_max_over_pieces_ignoring_unscored():
    word_index = torch.tensor([[-1, 0, 0, 1, 2, 2, -1, -1],
                               [-1, 0, 1, 1, 1, -1, -1, -1]])
    scores = torch.tensor([[9.0, 0.1, 0.5, 0.3, -0.2, -0.7, 8.0, 7.0],
                           [9.0, 0.4, 0.2, 0.6, 0.1, 5.0, 5.0, 5.0]])
    out = pieces_to_words(scores, word_index, 4)
    # row 0: max(0.1, 0.5), 0.3, max(-0.2, -0.7) stays negative, word 3 was cut off -> 0
    # row 1: 0.4, max(0.2, 0.6, 0.1), words 2 and 3 have no pieces -> 0; specials (9, 5) never count
    assert torch.equal(out, torch.tensor([[0.5, 0.3, -0.2, 0.0], [0.4, 0.6, 0.0, 0.0]]))
    assert out.dtype == scores.dtype


def test_pieces_to_words_on_head_shapes():
    gen = torch.Generator().manual_seed(0)
    word_index = torch.tensor([[-1, 0, 0, 0, 1, 2, 2, -1], [-1, 0, 1, 1, -1, -1, -1, -1]])
    scores = torch.rand(2, 2, 3, 4, 8, generator=gen) - 0.5   # [B, P, L, H, T]
    out = pieces_to_words(scores, word_index, 3)
    assert out.shape == (2, 2, 3, 4, 3)
    for b in range(2):
        for w in range(3):
            pieces = [t for t in range(8) if word_index[b, t] == w]
            expected = scores[b, ..., pieces].amax(-1) if pieces else torch.zeros(2, 3, 4)
            assert torch.equal(out[b, ..., w], expected)


def test_pieces_to_words_keeps_positive_infinity():
    out = pieces_to_words(torch.tensor([[0.0, float("inf"), 0.5, 0.0]]), torch.tensor([[-1, 0, 1, -1]]), 2)
    assert out.tolist() == [[float("inf"), 0.5]]


# --- first pieces, collate ----------------------------------------------------------------------

def test_first_piece_mask():
    word_index = torch.tensor([[-1, 0, 0, 1, 2, 2, 2, -1, -1], [-1, 0, 1, 2, 3, -1, -1, -1, -1]])
    assert first_piece_mask(word_index).int().tolist() == [[0, 1, 0, 1, 1, 0, 0, 0, 0],
                                                           [0, 1, 1, 1, 1, 0, 0, 0, 0]]
    assert first_piece_mask(torch.tensor([[0, 0, 1]])).tolist() == [[True, False, True]]  # no [CLS]


def test_collate_pads_to_the_longest_of_the_batch(tokenizer):
    items, _ = encode([sent(["ok"], [0]), sent(SPLIT_WORDS, [0, 1, 0, 0])], tokenizer, 128)
    batch = collate(items, tokenizer)
    assert set(batch) == {"input_ids", "attention_mask", "word_index", "labels"}
    assert batch["input_ids"].shape == (2, 15)  # the longest sentence, not max_seq_length
    assert batch["input_ids"][0].tolist() == items[0].input_ids + [PAD] * 12
    assert batch["input_ids"][1].tolist() == items[1].input_ids
    assert batch["attention_mask"].tolist() == [[1] * 3 + [0] * 12, [1] * 15]
    assert batch["word_index"][0].tolist() == [-1, 0, -1] + [-1] * 12
    assert batch["word_index"][1].tolist() == items[1].word_index
    assert batch["labels"].tolist() == [0.0, 1.0] and batch["labels"].dtype == torch.float32


def test_collate_places_token_targets_on_first_pieces(tokenizer):
    items, _ = encode([sent(["ok", "fine"]), sent(SPLIT_WORDS)], tokenizer, 128,
                      targets=[[0.5, 0.25], [1.0, 2.0, 3.0, 4.0]])
    batch = collate(items, tokenizer)
    assert torch.equal(batch["target_mask"], first_piece_mask(batch["word_index"]))
    assert batch["token_targets"].tolist() == [
        [0, 0.5, 0.25, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        # pieces:  un ##bel ##ie ##va ##bly token ##ization @ paul ##walk # hash ##tag
        [0, 1.0, 0, 0, 0, 0, 2.0, 0, 3.0, 0, 0, 4.0, 0, 0, 0],
    ]


# --- batch order --------------------------------------------------------------------------------

LENGTHS_IN_WORDS = [5, 3, 7, 3, 6, 1, 9, 2, 4, 8, 3, 5]


def items_of_lengths(tokenizer, lengths=LENGTHS_IN_WORDS):
    """One sentence per length, made of one-piece words, so pieces = words + 2."""
    sentences = [sent(["the"] * n, [0] * n) for n in lengths]
    return encode(sentences, tokenizer, 128)[0]


def test_eval_batches_are_sorted_by_length_and_indices_restore_the_order(tokenizer):
    items = items_of_lengths(tokenizer)
    out = list(batches(items, tokenizer, 5))
    order = [i for idx, _ in out for i in idx]
    assert order == sorted(range(12), key=lambda i: (LENGTHS_IN_WORDS[i], i))
    assert [len(idx) for idx, _ in out] == [5, 5, 2]
    for idx, batch in out:
        assert batch["input_ids"].shape[1] == max(LENGTHS_IN_WORDS[i] for i in idx) + 2
        for row, i in enumerate(idx):
            n = len(items[i].input_ids)
            assert batch["input_ids"][row, :n].tolist() == items[i].input_ids
    restored = [None] * 12
    for idx, batch in out:
        for row, i in enumerate(idx):
            restored[i] = int(batch["attention_mask"][row].sum())
    assert restored == [n + 2 for n in LENGTHS_IN_WORDS]


def train_order(items, tokenizer, seed, group_by_length, batch_size=3):
    return [idx for idx, _ in batches(items, tokenizer, batch_size, shuffle=True,
                                      group_by_length=group_by_length, seed=seed)]


def padding(items, order) -> int:
    return sum(len(idx) * max(len(items[i].input_ids) for i in idx) - sum(len(items[i].input_ids) for i in idx)
               for idx in order)


@pytest.mark.parametrize("group_by_length", [True, False])
def test_training_order_is_a_permutation_and_a_function_of_the_seed(tokenizer, group_by_length):
    items = items_of_lengths(tokenizer)
    first = train_order(items, tokenizer, 7, group_by_length)
    assert sorted(i for idx in first for i in idx) == list(range(12))
    assert [len(idx) for idx in first] == [3, 3, 3, 3]
    torch.manual_seed(0)  # the global RNG plays no part
    assert train_order(items, tokenizer, 7, group_by_length) == first
    assert train_order(items, tokenizer, 8, group_by_length) != first


def test_group_by_length_pads_less_than_a_plain_shuffle(tokenizer):
    # transformers' sampler sorts "megabatches" of min(n // (4 * batch_size), 50) batches, so grouping
    # needs n >= 8 * batch_size to show; 96 sentences of 1..48 words, batches of 4: megabatches of 24
    lengths = [(i * 37) % 96 // 2 + 1 for i in range(96)]
    items = items_of_lengths(tokenizer, lengths)
    grouped = train_order(items, tokenizer, 3, True, batch_size=4)
    shuffled = train_order(items, tokenizer, 3, False, batch_size=4)
    assert sorted(i for idx in grouped for i in idx) == list(range(96))
    assert 3 * padding(items, grouped) < padding(items, shuffled)


# --- mask_words ---------------------------------------------------------------------------------

@pytest.fixture
def word_batch(tokenizer):
    items, _ = encode([sent(SPLIT_WORDS), sent(["ok", "unbelievably"]), sent(["a", "b", "c", "d", "e", "f"])],
                      tokenizer, 128)
    return collate(items, tokenizer)


def test_mask_prob_zero_changes_nothing(word_batch, tokenizer):
    out = mask_words(word_batch, tokenizer.mask_token_id, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(out["input_ids"], word_batch["input_ids"])


def test_mask_prob_one_masks_every_word_piece_and_nothing_else(word_batch, tokenizer):
    before = word_batch["input_ids"].clone()
    out = mask_words(word_batch, tokenizer.mask_token_id, 1.0, torch.Generator().manual_seed(0))
    words = word_batch["word_index"] != NO_WORD
    assert (out["input_ids"][words] == tokenizer.mask_token_id).all()
    assert torch.equal(out["input_ids"][~words], before[~words])  # [CLS], [SEP], padding untouched
    assert torch.equal(word_batch["input_ids"], before)  # the input batch is not changed in place
    for key in ("attention_mask", "word_index", "labels"):
        assert out[key] is word_batch[key]


def test_mask_words_masks_whole_words_only(word_batch, tokenizer):
    out = mask_words(word_batch, tokenizer.mask_token_id, 0.5, torch.Generator().manual_seed(3))
    masked = out["input_ids"] == tokenizer.mask_token_id
    word_index = word_batch["word_index"]
    chosen = 0
    for b in range(word_index.shape[0]):
        for w in range(int(word_index[b].max()) + 1):
            pieces = masked[b][word_index[b] == w]
            assert pieces.all() or not pieces.any()  # all of a word's pieces, or none
            chosen += int(pieces.all())
    assert not masked[word_index == NO_WORD].any()
    assert 0 < chosen < 12  # some words masked, some not
    again = mask_words(word_batch, tokenizer.mask_token_id, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(again["input_ids"], out["input_ids"])  # a function of the generator


def test_encoded_is_frozen():
    item = Encoded([101, 102], [-1, -1], 0, 0.0, None)
    with pytest.raises(AttributeError):
        item.label = 1.0
