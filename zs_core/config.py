"""One frozen dataclass per stage, built from the seed's flat key names.

A flat mapping (a YAML ``fixed:`` block plus sampled search values, or a seed ``.conf`` file through
``sweep.seed_conf``) is split over the stages by key; an unknown key or a wrong type is an InputError naming it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any


from zs_core.errors import InputError


@dataclass(frozen=True)
class DataConfig:
    max_seq_length: int = 128       # pieces per sentence, special tokens included; words past it score 0
    lowercase: bool = False         # lowercase every word before tokenizing
    do_mask_words: bool = False     # training only: replace whole words by the mask token ...
    mask_prob: float = 0.0          # ... each with this probability


@dataclass(frozen=True)
class ModelConfig:
    model_name: str = "minilm"            # built-in encoder name or a local Hugging Face folder
    soft_attention: bool = True           # soft-attention head; False: classifier on the first token
    hid_to_attn_dropout: float = 0.1      # dropout on encoder states before the attention evidence
    attention_evidence_size: int = 100    # width of e = tanh(W_e h)
    final_hidden_layer_size: int = 300    # tanh layer on the attended sentence vector
    initializer_name: str = "glorot"      # as in the seed: glorot = xavier normal, xavier = xavier uniform,
                                          # normal = N(0, 1)
    attention_activation: str = "soft"    # soft = sigmoid, sharp = exp, linear
    square_attention: bool = True         # square a before normalising it
    freeze_bert_layers_up_to: int = 0     # freeze embeddings and layers [0, N)
    soft_attention_alpha: float = 0.1     # weight of mean(min_t a)^2
    soft_attention_gamma: float = 0.1     # weight of mean(max_t a - y)^2
    soft_attention_beta: float = 0.0      # weight of MSE(a, token targets) on first pieces
    zero_n: int = 3                       # how many smallest a per sentence ...
    zero_delta: float = 0.1               # ... are pushed to 0 with this weight
    sentence_loss: str = "bce"            # bce; mse (Rei & Soegaard's squared error); ce2 (the seed's 2-way
                                          # cross-entropy over two outputs, sigmoids for soft attention)
    attend_sep: bool = False              # the seed's: soft attention also attends to the end-of-sentence
                                          # token (normalisation, sentence vector, alpha/gamma/zero terms);
                                          # it is never a word, so it never gets a word score
    normalise_labels: bool = False        # beta loss on the normalised attention instead of the raw one


@dataclass(frozen=True)
class TrainConfig:
    per_device_train_batch_size: int = 16
    num_train_epochs: int = 3
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1             # linear warm-up over this share of the steps, then linear decay
    warmup_unit: str = "steps"            # steps: warmup_ratio x optimizer steps; sentences: the seed's
                                          # warmup_ratio x (sentences // accumulation) x epochs steps
    eval_steps: int = 0                   # 0: dev evaluation after every epoch; N: every N optimizer steps
                                          # and after the last (the seed's save_steps/logging_steps)
    weight_decay: float = 0.1
    adam_epsilon: float = 1e-7
    max_grad_norm: float = 1.0            # gradient clipping (0 = off), as the seed's HF Trainer did
    gradient_accumulation_steps: int = 1
    seed: int = 15
    group_by_length: bool = True          # length-grouped batches (False: shuffled, padded to the longest)
    token_input_dir: str | None = None    # word-score TSV of the train split used as token targets (beta)
    token_input_filename: str | None = None
    normalise_preds: bool = False         # targets per sentence: negatives to 0, rescaled to sum 1


@dataclass(frozen=True)
class EvalConfig:
    per_device_eval_batch_size: int = 64
    importance_threshold: float = 0.5     # a word is positive when its score >= this ...
    top_count: int = 0                    # ... and it is among the sentence's top_count (0 = no limit)


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()

    def flat(self) -> dict[str, Any]:
        """All keys in one flat dict (leaderboard columns, saved configs)."""
        out: dict[str, Any] = {}
        for stage in (self.data, self.model, self.train, self.eval):
            out.update(dataclasses.asdict(stage))
        return out


STAGES = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "eval": EvalConfig}
KEYS = {f.name: (stage, f) for stage, cls in STAGES.items() for f in fields(cls)}

AT_LEAST = {"eval_steps": 0, "zero_n": 0, "num_train_epochs": 1, "per_device_train_batch_size": 1,
            "per_device_eval_batch_size": 1, "gradient_accumulation_steps": 1}
CHOICES = {
    "initializer_name": ("glorot", "xavier", "normal"),
    "attention_activation": ("soft", "sharp", "linear"),
    "sentence_loss": ("bce", "mse", "ce2"),
    "warmup_unit": ("steps", "sentences"),
}


def build_config(flat: dict[str, Any], source: str) -> RunConfig:
    """Split a flat mapping over the stage dataclasses, checking every key and type."""
    per_stage: dict[str, dict[str, Any]] = {name: {} for name in STAGES}
    for key, value in flat.items():
        if key not in KEYS:
            raise InputError(f"{source}: unknown key {key!r}; expected one of: {', '.join(sorted(KEYS))}")
        stage, field = KEYS[key]
        per_stage[stage][key] = coerce(value, field, source)
    return RunConfig(**{name: STAGES[name](**values) for name, values in per_stage.items()})


def coerce(value: Any, field: dataclasses.Field, source: str) -> Any:
    """Check (and for .conf strings, convert) one value against the field's declared type."""
    kind = field.type if isinstance(field.type, str) else field.type.__name__
    optional = kind.endswith("| None")
    kind = kind.replace("| None", "").strip()
    if isinstance(value, str):
        value = value.strip()
        if optional and value in ("", "None"):
            return None
    if optional and value is None:
        return None
    try:
        out = _convert(value, kind)
    except (TypeError, ValueError):
        raise InputError(f"{source}: key {field.name!r} expects {kind}, got {value!r}") from None
    allowed = CHOICES.get(field.name)
    if allowed and out not in allowed:
        raise InputError(f"{source}: key {field.name!r} must be one of {', '.join(allowed)}, got {out!r}")
    low = AT_LEAST.get(field.name)
    if low is not None and out < low:
        raise InputError(f"{source}: key {field.name!r} must be at least {low}, got {out!r}")
    return out


def _convert(value: Any, kind: str) -> Any:
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValueError(value)
    if kind == "int":
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(value)
        return int(value) if not isinstance(value, str) else int(value, 10)
    if kind == "float":
        if isinstance(value, bool):
            raise ValueError(value)
        return float(value)
    if kind == "str":
        if not isinstance(value, str):
            raise TypeError(value)
        return value
    raise TypeError(kind)
