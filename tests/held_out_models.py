"""Held-out real models from small ``transformers`` configs, shared by the partitioning tests.

Each builder returns the model (in eval mode) and example inputs; it skips the test when
``transformers`` is not installed.
"""

from __future__ import annotations

import pytest
import torch

__all__ = ["bert", "gpt2"]


def gpt2() -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    """GPT-2 with 2 layers of width 32, without the key/value cache; token ids [2, 8]."""
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(
        n_layer=2, n_head=2, n_embd=32, vocab_size=100, n_positions=32, use_cache=False
    )
    return transformers.GPT2Model(cfg).eval(), (torch.randint(0, 100, (2, 8)),)


def bert() -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    """BERT with 2 layers of width 32; token ids [2, 8]."""
    transformers = pytest.importorskip("transformers")
    cfg = transformers.BertConfig(
        num_hidden_layers=2,
        num_attention_heads=2,
        hidden_size=32,
        intermediate_size=64,
        vocab_size=100,
        max_position_embeddings=32,
    )
    return transformers.BertModel(cfg).eval(), (torch.randint(0, 100, (2, 8)),)
