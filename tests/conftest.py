"""Shared test setup: offline Hugging Face, the minilm tokenizer and encoders."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported anywhere: nothing is downloaded

import pytest
import torch

# One intra-op thread: the tests run tiny tensors on 2 cores shared with other jobs, where a second
# OpenMP thread spinning for a busy core made minilm forwards ~30x slower. Results do not depend on it.
torch.set_num_threads(int(os.environ.get("ZS_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def tokenizer():
    """The minilm WordPiece tokenizer (tiny-random uses it too). Read-only: do not change it in a test."""
    from zs_core.encoders import load_tokenizer

    return load_tokenizer("minilm")


@pytest.fixture(scope="session")
def minilm_eager():
    """all-MiniLM-L6-v2 with eager attention, in eval mode. Read-only: do not train or modify it."""
    from zs_core.encoders import load_encoder

    return load_encoder("minilm", attentions=True).eval()


@pytest.fixture
def tiny_eager():
    """A fresh tiny-random encoder with eager attention, in eval mode (each test gets its own copy)."""
    from zs_core.encoders import load_encoder

    return load_encoder("tiny-random", attentions=True).eval()

