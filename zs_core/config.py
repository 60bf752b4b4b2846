"""The stage configs (data, model, train, eval, tune) as frozen pydantic models, validated in one place.

Keys keep the seed's names. A flat mapping (a YAML ``fixed:`` block plus sampled search values, or a seed
``.conf`` through ``sweep.seed_conf``) is split over the data, model, train and eval stages by key
(``build_config``); the data block of a sweep (``data:``, or --data / --data-dir) fills the data stage's
source fields (``DATA_SOURCE``, through ``data_config``). ``validated`` is the one adapter from
pydantic's errors to the project's one-line ``file: key: what was expected`` InputError (exit 2 on the
command line). YAML values are checked strictly (``true`` for a bool, a whole number for an int); a .conf's
strings are converted (``strict=False``).
"""
from __future__ import annotations

import types
import typing
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt, ValidationError, model_validator

from zs_core.errors import InputError, shown
from zs_core.layouts import SEED_LAYOUTS, SeedDataset, SplitFiles, folder_split_files, seed_split_files, wnut16_path

BUILTIN_ENCODERS = ("minilm", "tiny-random")  # see zs_core.encoders
Split = Literal["train", "dev", "test"]
Dataset = Literal["wnut16"]  # the named datasets
DATASETS = typing.get_args(Dataset)
SPLITS = typing.get_args(Split)
Counts = dict[Split, PositiveInt]


class Stage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)  # .nan or .inf is never a setting


class DataConfig(Stage):
    # which sentences (the data: block): a named dataset, a folder with train.tsv, dev.tsv, test.tsv (and
    # {split}.sentences.tsv when the sentence labels are not "any word is positive"), or one of the seed's
    # datasets below a root that holds the seed's data/ folder
    dataset: Dataset | None = None         # None with dir or seed_dataset; wnut16 when none is given
    dir: str | None = None
    positive_labels: tuple[str, ...] = ()  # with dir: the positive categories; () = numeric labels
    seed_dataset: SeedDataset | None = None
    root: str | None = None                # with seed_dataset
    limit: Counts | None = None            # the first N sentences per split: {train: N, dev: N, test: N}
    sample: Counts | None = None           # a fixed random N sentences per split (after limit), in file order
    # how they are encoded (flat keys, the seed's names)
    max_seq_length: int = Field(128, ge=3)  # pieces per sentence, special tokens included; words past it score 0
    lowercase: bool = False                  # lowercase every word before tokenizing (the words stay as read)
    do_mask_words: bool = False              # training only: replace whole words by the mask token ...
    mask_prob: float = Field(0.0, ge=0, le=1)  # ... each with this probability

    @model_validator(mode="before")
    @classmethod
    def _one_source(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        dataset, folder, labels = values.get("dataset"), values.get("dir"), values.get("positive_labels")
        seed, root = values.get("seed_dataset"), values.get("root")
        if sum(x is not None for x in (dataset, folder, seed)) > 1:
            raise ValueError("data: give one of data.dataset, data.dir, data.seed_dataset")
        if labels and folder is None:
            raise ValueError(f"data.positive_labels: only used with data.dir "
                             f"({dataset or seed or 'wnut16'} has fixed labels)")
        if (root is None) != (seed is None):
            raise ValueError("data.root: expected with data.seed_dataset (the folder that holds the seed's data/ "
                             "folder, or set ZS_DATA_ROOT)" if seed is not None else
                             "data.root: only used with data.seed_dataset")
        if isinstance(labels, (str, int)) and not isinstance(labels, bool):
            labels = [labels]  # one label may be given bare; labels that YAML reads as numbers are text
        if isinstance(labels, (list, tuple)) and all(isinstance(x, (str, int)) and not isinstance(x, bool)
                                                     for x in labels):
            values = {**values, "positive_labels": tuple(str(x) for x in labels)}
        return {**values, "dataset": "wnut16"} if dataset is None and folder is None and seed is None else values

    def split_files(self, split: str) -> SplitFiles:
        """The files a split is read from (wnut16's three splits share one file and have no sentence file)."""
        if self.seed_dataset is not None:
            return seed_split_files(self.seed_dataset, self.root, split)
        if self.dir is not None:
            return folder_split_files(self.dir, split)
        return SplitFiles(wnut16_path(), None)

    def positive(self) -> tuple[str, ...]:
        """The labels that count as positive (a seed dataset's own one; () for numeric labels and wnut16)."""
        if self.seed_dataset is not None:
            return (SEED_LAYOUTS[self.seed_dataset].positive,)
        return tuple(self.positive_labels)


class ModelConfig(Stage):
    model_name: str = "minilm"            # built-in encoder name or a local Hugging Face folder
    # the seed's name: True = a sentence classifier (zero-shot: trained on sentence labels only); False = the
    # supervised ceiling, a token classifier trained on the gold token labels (first piece of each word),
    # whose word score is P(positive); the soft-attention keys below do not apply to it
    is_seq_class: bool = True
    soft_attention: bool = True           # a head that scores words (zero_shot_head); False: classifier on [CLS]
    # which word-scoring head: soft_attention (Rei & Soegaard 2018) or max_pool (multiple-instance learning:
    # one logit per word piece, the sentence logit their max_pool_reduce, a word's score its own probability)
    zero_shot_head: Literal["soft_attention", "max_pool"] = "soft_attention"
    # max_pool: max, log-sum-exp, mean of top 3, or maxmin: smooth max plus smooth min, t log sum exp(z / t) -
    # t log sum exp(-z / t), so a word can hold its score in a sentence whose other words outweigh it
    max_pool_reduce: Literal["max", "logsumexp", "top3", "maxmin"] = "max"
    # logsumexp's and maxmin's temperature t: the log-sum-exp is t log sum exp(z / t), from the max (t -> 0) to
    # the plain log-sum-exp (1; with logsumexp a sentence's odds are then the sum of its words' odds)
    max_pool_temperature: float = Field(1.0, gt=0)
    # max_pool: pool each of attention_evidence_size relu features over the pieces, then one output layer; a
    # piece's score is sigmoid of its share of the sentence logit (Schmaltz 2021's decomposition; reduce max only)
    max_pool_decompose: bool = False
    hid_to_attn_dropout: float = Field(0.1, ge=0, lt=1)  # dropout on encoder states before the evidence
    attention_evidence_size: PositiveInt = 100  # width of e = tanh(W_e h)
    final_hidden_layer_size: PositiveInt = 300  # tanh layer on the attended sentence vector
    # as in the seed: glorot = xavier normal, xavier = xavier uniform, normal = N(0, 1)
    initializer_name: Literal["glorot", "xavier", "normal"] = "glorot"
    attention_activation: Literal["soft", "sharp", "linear"] = "soft"  # soft = sigmoid, sharp = exp
    square_attention: bool = True         # square a before normalising it
    freeze_bert_layers_up_to: NonNegativeInt = 0  # freeze embeddings and layers [0, N)
    soft_attention_alpha: float = 0.1     # weight of mean(min_t a)^2
    soft_attention_gamma: float = 0.1     # weight of mean(max_t a - y)^2
    soft_attention_beta: float = 0.0      # weight of MSE(a, token targets) on first pieces
    zero_n: NonNegativeInt = 3            # how many smallest a per sentence ...
    zero_delta: float = 0.1               # ... are pushed to 0 with this weight
    # bce; mse (Rei & Soegaard's squared error); ce2 (the seed's 2-way cross-entropy over two outputs,
    # sigmoids for soft attention)
    sentence_loss: Literal["bce", "mse", "ce2"] = "bce"
    # the seed's: soft attention also attends to the end-of-sentence token (normalisation, sentence vector,
    # alpha/gamma/zero terms); it is never a word, so it never gets a word score
    attend_sep: bool = False
    normalise_labels: bool = False        # beta loss on the normalised attention instead of the raw one
    # the supervised ceiling's weight on positive words in its loss: auto = negatives / positives among the train
    # split's words (a rare label still gets scores above 0.5); 1.0 = unweighted
    token_pos_weight: float | Literal["auto"] = Field("auto", union_mode="left_to_right")

    @model_validator(mode="after")
    def _max_pool_loss(self) -> ModelConfig:
        if self.is_seq_class and self.soft_attention and self.zero_shot_head == "max_pool" \
                and self.sentence_loss == "ce2":
            raise ValueError("sentence_loss: ce2 (two outputs) applies to soft attention and the [CLS] classifier; "
                             "zero_shot_head max_pool has one sentence logit: use bce or mse")
        if self.max_pool_temperature != 1.0 and self.max_pool_reduce not in ("logsumexp", "maxmin"):
            raise ValueError(f"max_pool_temperature: applies to max_pool_reduce logsumexp and maxmin only, not "
                             f"{self.max_pool_reduce!r}")
        if self.max_pool_decompose and self.max_pool_reduce != "max":
            raise ValueError(f"max_pool_decompose: pools with the max only, not max_pool_reduce "
                             f"{self.max_pool_reduce!r}")
        return self


class TrainConfig(Stage):
    per_device_train_batch_size: PositiveInt = 16
    num_train_epochs: PositiveInt = 3
    learning_rate: float = Field(2e-5, gt=0)
    # the head's (every parameter outside the encoder) learning rate; None: learning_rate. A fresh head often
    # wants more than the pretrained encoder; the schedule (warm-up, decay) scales both alike
    head_learning_rate: float | None = Field(None, gt=0)
    warmup_ratio: float = Field(0.1, ge=0)  # linear warm-up over this share of the steps, then linear decay
    # steps: warmup_ratio x optimizer steps; sentences: the seed's warmup_ratio x (sentences // accumulation)
    # x epochs steps
    warmup_unit: Literal["steps", "sentences"] = "steps"
    # 0: dev evaluation after every epoch; N: every N optimizer steps and after the last (the seed's
    # save_steps/logging_steps)
    eval_steps: NonNegativeInt = 0
    # stop when the run's selection metric has not improved for this many dev evaluations (0 = never); the
    # supervised ceiling defaults to 3, with up to 20 epochs (CEILING_DEFAULTS), so it trains to convergence
    early_stopping_patience: NonNegativeInt = 0
    weight_decay: float = Field(0.1, ge=0)
    adam_epsilon: float = Field(1e-7, gt=0)
    max_grad_norm: float = Field(1.0, ge=0)  # gradient clipping (0 = off), as the seed's HF Trainer did
    gradient_accumulation_steps: PositiveInt = 1
    seed: int = Field(15, ge=0, lt=2**32)  # what numpy and torch take
    group_by_length: bool = True          # length-grouped batches (False: shuffled, padded to the longest)
    token_input_dir: str | None = None    # word-score TSV of the train split used as token targets (beta)
    token_input_filename: str | None = None
    normalise_preds: bool = False         # targets per sentence: negatives to 0, rescaled to sum 1


class EvalConfig(Stage):
    per_device_eval_batch_size: PositiveInt = 64
    importance_threshold: float = 0.5     # a word is positive when its score >= this ...
    top_count: NonNegativeInt = 0         # ... and it is among the sentence's top_count (0 = no limit)


class RunConfig(Stage):
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()

    def flat(self) -> dict[str, Any]:
        """The flat keys in one dict (leaderboard columns, saved configs); the data source is not one of them."""
        out: dict[str, Any] = {}
        for name in STAGES:
            out.update(getattr(self, name).model_dump(exclude=set(DATA_SOURCE)))
        return out


STAGES = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "eval": EvalConfig}
# the data: block, not flat keys
DATA_SOURCE = ("dataset", "dir", "positive_labels", "seed_dataset", "root", "limit", "sample")
KEYS = {key: stage for stage, cls in STAGES.items() for key in cls.model_fields if key not in DATA_SOURCE}
M = TypeVar("M", bound=BaseModel)
CEILING_DEFAULTS = {"num_train_epochs": 20, "early_stopping_patience": 3}  # is_seq_class false, where not given


def build_config(flat: dict[str, Any], source: str, strict: bool = True) -> RunConfig:
    """Split a flat mapping over the stages and validate it (the data stage's source keeps its default:
    a sweep's data block is ``data_config``'s, for loading the splits)."""
    per_stage: dict[str, dict[str, Any]] = {name: {} for name in STAGES}
    for key, value in flat.items():
        if key not in KEYS:
            raise InputError(f"{source}: unknown key {shown(key)}; expected one of: {', '.join(sorted(KEYS))}")
        per_stage[KEYS[key]][key] = value
    if per_stage["model"].get("is_seq_class") is False:  # the ceiling trains until dev stops improving
        per_stage["train"] = {**CEILING_DEFAULTS, **per_stage["train"]}
    stages = {name: validated(STAGES[name], values, source, strict) for name, values in per_stage.items()}
    return RunConfig(**stages)


def validated(cls: type[M], values: dict[str, Any], source: str, strict: bool = True, prefix: str = "") -> M:
    """``cls`` from ``values``, or an InputError naming the source, the key and what was expected."""
    try:
        return cls.model_validate(values, strict=strict)
    except ValidationError as err:
        raise InputError(_message(err.errors()[0], cls, source, prefix)) from None


def _message(error: dict, cls: type[BaseModel], source: str, prefix: str) -> str:
    loc = [str(part) for part in error["loc"] if part != "[key]"]
    key, got, kind, ctx = (loc[0] if loc else ""), error.get("input"), error["type"], error.get("ctx") or {}
    where = f"{source}: {prefix}{'.'.join(loc)}" if prefix else f"{source}: key {shown(key)}"
    if kind == "extra_forbidden":
        allowed = ", ".join(sorted(cls.model_fields))
        return f"{source}: unknown key {prefix}{shown(key)}; expected one of: {allowed}" if not prefix else \
            f"{source}: unknown key {prefix}{key}; allowed: {allowed}"
    if kind == "literal_error":
        return f"{where} must be one of {ctx['expected'].replace(chr(39), '').replace(' or ', ', ')}, got {shown(got)}"
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        if "gt" in ctx and isinstance(got, int) and isinstance(bound, int):  # whole numbers: say the smallest
            return f"{where} must be at least {bound + 1}, got {shown(got)}"
        return f"{where} must be {'at least' if 'ge' in ctx else 'above'} {bound}, got {shown(got)}"
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        return f"{where} must be {'at most' if 'le' in ctx else 'below'} {bound}, got {shown(got)}"
    if kind == "value_error":  # the validators' own messages name their keys
        return f"{source}: {str(error['msg']).removeprefix('Value error, ')}"
    if kind.endswith(("_type", "_parsing")) and loc:
        return f"{where} expects {key_kind(cls, key)}, got {shown(got)}"
    return f"{where}: {error['msg']}, got {shown(got)}"


def key_kind(cls: type[BaseModel], key: str) -> str:
    """The plain type of a field: bool, int, float, str, or the annotation's own name."""
    field = cls.model_fields.get(key)
    if field is None:
        return "a value"
    base = field.annotation
    if typing.get_origin(base) in (typing.Union, types.UnionType):  # X | None -> X
        base = next(a for a in typing.get_args(base) if a is not type(None))
    if typing.get_origin(base) is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(base)))
    name = getattr(typing.get_origin(base) or base, "__name__", str(base))
    return {"tuple": "a list", "dict": "a mapping"}.get(name, name)


def flat_kind(key: str) -> str:
    """The plain type of a flat key (bool, int, float, str, or 'one of ...')."""
    return key_kind(STAGES[KEYS[key]], key)


def data_config(block: dict, source: str) -> DataConfig:
    """The data stage's source from a sweep's ``data:`` block (dataset, dir, positive_labels, seed_dataset, root,
    limit, sample);
    errors name ``source: data.KEY``. How words are encoded (lowercase, max_seq_length) are flat keys."""
    if not isinstance(block, dict):
        raise InputError(f"{source}: data: expected a mapping, got {shown(block)}")
    for key in block:
        if key not in DATA_SOURCE:
            where = " (a flat key: give it under fixed:)" if key in KEYS else ""
            raise InputError(f"{source}: data.{key}: unknown key{where}; allowed: {', '.join(DATA_SOURCE)}")
    return validated(DataConfig, block, source, prefix="data.")
