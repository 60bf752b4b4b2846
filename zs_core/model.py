"""Encoder + a zero-shot word-scoring head (soft attention, Rei & Soegaard 2018, or max pooling over word
pieces, multiple-instance learning), a plain classifier head on the first token, or (the supervised ceiling,
``is_seq_class`` False) a token classifier trained on gold token labels.

``forward(batch, labels=None) -> (outputs, loss)``: training and evaluation share one call.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel

from zs_core.batching import NO_WORD, first_piece_mask
from zs_core.config import ModelConfig
from zs_core.encoders import freeze_layers, load_encoder
from zs_core.protocol import MAX_POOL, model_method

ACTIVATIONS = {"soft": torch.sigmoid, "sharp": torch.exp, "linear": lambda x: x}


class SoftAttentionHead(nn.Module):
    def __init__(self, hidden: int, evidence_size: int, final_size: int, dropout: float, activation: str,
                 square: bool, n_out: int = 1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.evidence = nn.Linear(hidden, evidence_size)
        self.weight = nn.Linear(evidence_size, 1)
        self.final = nn.Linear(hidden, final_size)
        self.out = nn.Linear(final_size, n_out)
        self.activation = ACTIVATIONS[activation]
        self.square = square

    def forward(self, hidden: torch.Tensor, attended: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """hidden [B, T, D], attended [B, T] bool -> (sentence outputs [B, n_out], token score a [B, T])."""
        h = self.dropout(hidden)
        e = torch.tanh(self.evidence(h))                                   # [B, T, E]
        a = self.activation(self.weight(e).squeeze(-1))                    # [B, T]
        a = a.masked_fill(~attended, 0.0)
        weights = a * a if self.square else a
        weights = weights / _nonzero(weights.sum(dim=1, keepdim=True))   # sums to 1 whatever its sign
        sentence = (weights.unsqueeze(-1) * h).sum(dim=1)                  # [B, D]
        return self.out(torch.tanh(self.final(sentence))), a               # [B, n_out], [B, T]


class MaxPoolHead(nn.Module):
    """Multiple-instance learning: one logit per piece, the sentence logit their max (or a smooth max); a
    piece's score is its own probability, so 0.5 means what it says."""

    def __init__(self, hidden: int, evidence_size: int, dropout: float, reduce: str, temperature: float = 1.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.evidence = nn.Linear(hidden, evidence_size)
        self.weight = nn.Linear(evidence_size, 1)
        self.reduce, self.temperature = reduce, temperature

    def forward(self, hidden: torch.Tensor, attended: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """hidden [B, T, D], attended [B, T] bool -> (sentence logit [B, 1], piece probability a [B, T])."""
        logits = self.weight(torch.tanh(self.evidence(self.dropout(hidden)))).squeeze(-1)   # [B, T]
        lowest = torch.finfo(logits.dtype).min
        t = self.temperature if self.reduce in ("logsumexp", "maxmin") else 1.0
        scaled = logits / t if t != 1.0 else logits                                       # [B, T], z / t
        masked = scaled.masked_fill(~attended, lowest)  # scaled before masking: a row without words stays finite
        if self.reduce == "logsumexp":
            sentence = t * torch.logsumexp(masked, dim=1)                                 # [B]
        elif self.reduce == "maxmin":  # smooth max + smooth min: a negative word can outweigh a positive one
            smallest = -torch.logsumexp((-scaled).masked_fill(~attended, lowest), dim=1)  # [B]
            sentence = t * (torch.logsumexp(masked, dim=1) + smallest)                    # [B]
        elif self.reduce == "top3":
            k = min(3, masked.shape[1])
            top = masked.topk(k, dim=1).values                                            # [B, k]
            real = top > lowest
            sentence = (top * real).sum(1) / real.sum(1).clamp_min(1)                     # mean of the real ones
        else:
            sentence = masked.max(dim=1).values                                           # [B]
        sentence = torch.where(attended.any(dim=1), sentence, torch.zeros_like(sentence))
        return sentence.unsqueeze(-1), torch.sigmoid(logits).masked_fill(~attended, 0.0)


class DecomposedMaxPoolHead(nn.Module):
    """Max pooling before the output layer (Schmaltz 2021's convolutional decomposition, width 1): F relu features
    per piece, each max-pooled over the pieces, one linear output over the pooled features. A piece's contribution
    is the output weight times the pooled value of every feature whose max it holds, plus the bias; the contributions
    less the bias sum to the sentence logit less the bias, and a piece's score is sigmoid(contribution)."""

    def __init__(self, hidden: int, features: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.evidence = nn.Linear(hidden, features)
        self.out = nn.Linear(features, 1)

    def forward(self, hidden: torch.Tensor, attended: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """hidden [B, T, D], attended [B, T] bool -> (sentence logit [B, 1], piece score sigmoid(c) [B, T])."""
        v = F.relu(self.evidence(self.dropout(hidden)))                    # [B, T, F], >= 0
        pooled, where = v.masked_fill(~attended.unsqueeze(-1), -1.0).max(dim=1)   # [B, F]: a word's, where any
        pooled = pooled.clamp_min(0.0)                                     # a row without words pools 0
        weight, bias = self.out.weight.squeeze(0), self.out.bias           # [F], [1]
        share = pooled * weight                                            # [B, F]
        contribution = torch.zeros_like(attended, dtype=v.dtype).scatter_add(1, where, share) + bias   # [B, T]
        sentence = share.sum(dim=1, keepdim=True) + bias                   # [B, 1]
        sentence = torch.where(attended.any(dim=1, keepdim=True), sentence, torch.zeros_like(sentence))
        return sentence, torch.sigmoid(contribution).masked_fill(~attended, 0.0)


class FirstTokenHead(nn.Module):
    def __init__(self, hidden: int, dropout: float, n_out: int = 1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, n_out)

    def forward(self, hidden: torch.Tensor, attended: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.out(self.dropout(hidden[:, 0])), None                  # [B, n_out]


class TokenHead(nn.Module):
    """The supervised ceiling: one logit per piece, trained on each word's first piece."""

    def __init__(self, hidden: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, 1)
        # the loss's weight on positive words (token_pos_weight; training sets "auto"), saved with the head
        self.register_buffer("pos_weight", torch.tensor(1.0))

    def forward(self, hidden: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(hidden)).squeeze(-1)                  # [B, T]


class ZeroShotClassifier(nn.Module):
    def __init__(self, encoder: PreTrainedModel, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = encoder
        hidden = int(encoder.config.hidden_size)
        n_out = 2 if cfg.sentence_loss == "ce2" else 1
        if not cfg.is_seq_class:
            self.head = TokenHead(hidden, cfg.hid_to_attn_dropout)
        elif model_method(cfg) == MAX_POOL and cfg.max_pool_decompose:
            self.head = DecomposedMaxPoolHead(hidden, cfg.attention_evidence_size, cfg.hid_to_attn_dropout)
        elif model_method(cfg) == MAX_POOL:
            self.head = MaxPoolHead(hidden, cfg.attention_evidence_size, cfg.hid_to_attn_dropout, cfg.max_pool_reduce,
                                    cfg.max_pool_temperature)
        elif cfg.soft_attention:
            self.head = SoftAttentionHead(hidden, cfg.attention_evidence_size, cfg.final_hidden_layer_size,
                                          cfg.hid_to_attn_dropout, cfg.attention_activation, cfg.square_attention,
                                          n_out)
        else:
            self.head = FirstTokenHead(hidden, cfg.hid_to_attn_dropout, n_out)
        init_weights(self.head, cfg.initializer_name)

    def forward(self, batch: dict[str, torch.Tensor], labels: torch.Tensor | None = None):
        """Returns ({"sentence_logits" [B], "sentence_scores" [B], "token_scores" [B, T] or None}, loss).

        token_scores is a on word pieces and 0 elsewhere (an attended end-of-sentence token included).
        """
        hidden = self.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        scored = batch["word_index"] != NO_WORD                            # [B, T] real word pieces only
        if not self.cfg.is_seq_class:
            return self.token_forward(hidden, batch, labels)
        max_pool = model_method(self.cfg) == MAX_POOL
        attended = scored | end_tokens(batch["attention_mask"], scored) \
            if self.cfg.attend_sep and not max_pool else scored              # max_pool: word pieces only
        out, a = self.head(hidden, attended)                               # [B, n_out], [B, T]
        if self.cfg.sentence_loss == "ce2":
            # the seed: two outputs (sigmoids on the soft-attention head), cross-entropy over them; the
            # positive probability is their softmax, so >= 0.5 exactly when the positive output wins
            pair = torch.sigmoid(out) if self.cfg.soft_attention else out  # [B, 2]
            logit = pair[:, 1] - pair[:, 0]                                 # [B]
        else:
            pair, logit = None, out.squeeze(-1)                             # [B]
        words = None if a is None else a.masked_fill(~scored, 0.0)
        outputs = {"sentence_logits": logit, "sentence_scores": torch.sigmoid(logit), "token_scores": words}
        if labels is None:
            return outputs, None
        return outputs, self.loss(logit, pair, a, attended, labels, batch)

    def token_forward(self, hidden: torch.Tensor, batch: dict[str, torch.Tensor], labels: torch.Tensor | None):
        """The supervised ceiling: word score = P(positive) of the word's first piece (0 on the other pieces,
        so the max over a word's pieces is the first piece's); sentence score = the largest word score. The loss
        is binary cross-entropy over first pieces against ``token_targets`` (the gold labels)."""
        first = first_piece_mask(batch["word_index"])                       # [B, T]
        logits = self.head(hidden, first)                                   # [B, T]
        words = torch.sigmoid(logits).masked_fill(~first, 0.0)             # [B, T]
        sentence = torch.where(first, logits, torch.finfo(logits.dtype).min).max(dim=1).values   # [B]
        outputs = {"sentence_logits": sentence, "sentence_scores": torch.sigmoid(sentence), "token_scores": words}
        if labels is None:
            return outputs, None
        if "token_targets" not in batch:
            raise ValueError("a token classifier (is_seq_class False) trains on token_targets (the gold labels)")
        mask = batch["target_mask"]
        return outputs, F.binary_cross_entropy_with_logits(logits[mask], batch["token_targets"][mask],
                                                           pos_weight=self.head.pos_weight)

    def loss(self, logit, pair, a, attended, labels, batch) -> torch.Tensor:
        cfg = self.cfg
        if cfg.sentence_loss == "ce2":
            loss = F.cross_entropy(pair, labels.long())
        elif cfg.sentence_loss == "mse":
            loss = F.mse_loss(torch.sigmoid(logit), labels)
        else:
            loss = F.binary_cross_entropy_with_logits(logit, labels)
        if a is None:
            return loss
        return loss + attention_losses(a, attended, labels, cfg, batch.get("token_targets"), batch.get("target_mask"))


def end_tokens(attention_mask: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
    """[B, T] True on the special tokens after the first one ([SEP] / </s> of a single sentence)."""
    special = attention_mask.bool() & ~scored                               # [B, T]
    return special & (special.long().cumsum(dim=1) > 1)


def attention_losses(
    a: torch.Tensor, scored: torch.Tensor, labels: torch.Tensor, cfg: ModelConfig,
    targets: torch.Tensor | None = None, target_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """alpha * mean(min_t a)^2 + gamma * mean(max_t a - y)^2 + beta * MSE(a, targets) + zero term.

    a, scored: [B, T]; labels [B]; min, max and the zero term run over the attended (``scored``) positions.
    """
    inf = torch.tensor(float("inf"), dtype=a.dtype, device=a.device)
    a_min = torch.where(scored, a, inf).min(dim=1).values                  # [B]
    a_max = torch.where(scored, a, -inf).max(dim=1).values                 # [B]
    has = scored.any(dim=1)
    a_min, a_max = torch.where(has, a_min, 0.0), torch.where(has, a_max, 0.0)
    loss = cfg.soft_attention_alpha * (a_min ** 2).mean()
    loss = loss + cfg.soft_attention_gamma * ((a_max - labels) ** 2).mean()
    if cfg.soft_attention_beta and targets is not None:
        fitted = a
        if cfg.normalise_labels:
            fitted = a / _nonzero(a.sum(dim=1, keepdim=True))
        loss = loss + cfg.soft_attention_beta * F.mse_loss(fitted[target_mask], targets[target_mask])
    if cfg.zero_delta and cfg.zero_n > 0:
        k = min(cfg.zero_n, a.shape[1])
        smallest = torch.where(scored, a * a, inf).topk(k, dim=1, largest=False).values   # [B, k]
        smallest = smallest[torch.isfinite(smallest)]                       # sentences shorter than k
        if smallest.numel():
            loss = loss + cfg.zero_delta * smallest.mean()
    return loss


def _nonzero(total: torch.Tensor) -> torch.Tensor:
    """A normaliser: 1 where the sum is exactly 0 (nothing scored), the sum itself otherwise (any sign)."""
    return torch.where(total == 0, torch.ones_like(total), total)


INITIALIZERS = {"glorot": nn.init.xavier_normal_, "xavier": nn.init.xavier_uniform_, "normal": nn.init.normal_}


def init_weights(module: nn.Module, name: str) -> None:
    """The seed's names: glorot = xavier normal, xavier = xavier uniform, normal = N(0, 1). Biases start at 0."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            INITIALIZERS[name](layer.weight)
            nn.init.zeros_(layer.bias)


def build_model(cfg: ModelConfig, seed: int, attentions: bool = False) -> ZeroShotClassifier:
    """Encoder by name plus a freshly initialised head; the head's weights depend on ``seed`` only."""
    encoder = load_encoder(cfg.model_name, attentions=attentions)
    freeze_layers(encoder, cfg.freeze_bert_layers_up_to)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ZeroShotClassifier(encoder, cfg)
