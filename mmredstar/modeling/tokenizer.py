"""Tokenizers: the tiny local byte-level BPE, the special tokens and the one chat template.

The tiny tokenizer is a byte-level BPE trained in ~0.1 s on the built-in corpus (``corpus.py``):
deterministic, lossless on any text (byte fallback by construction), digits split one per token as in
Qwen, and a vocabulary of ~1.5k so typical chain-of-thought sentences stay short. It carries the
special tokens every model here uses and the ChatML chat template with ``{% generation %}`` markers
(so TRL's ``assistant_only_loss`` works).

    from mmredstar.modeling.tokenizer import build_tiny_tokenizer
    tok = build_tiny_tokenizer()            # a transformers PreTrainedTokenizerFast
    tok.save_pretrained("out/tok")
"""

from __future__ import annotations

import functools

from mmredstar.modeling.corpus import corpus

PAD = "<|endoftext|>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
THINK_START, THINK_END = "<think>", "</think>"
IMG_START, IMG_END, IMG_CONTEXT = "<img>", "</img>", "<IMG_CONTEXT>"

SPECIAL_TOKENS = [PAD, IM_START, IM_END, IMG_START, IMG_END, IMG_CONTEXT]
"""Control tokens (dropped by ``decode(skip_special_tokens=True)``)."""
THINK_TOKENS = [THINK_START, THINK_END]
"""Added as ordinary (non-special) tokens: they survive decoding, so responses keep their think block."""

# Qwen2's pre-tokenisation pattern: words with an optional leading non-letter, single digits,
# punctuation runs, newlines and spaces.
SPLIT_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")

CHAT_TEMPLATE = (
    "{%- macro render(content) -%}"
    "{%- if content is string -%}{{- content -}}"
    "{%- else -%}{%- for part in content -%}"
    "{%- if part['type'] == 'text' -%}{{- part['text'] -}}"
    "{%- elif part['type'] == 'image' -%}{{- image_placeholder | default('<image>') -}}{{- '\n' -}}"
    "{%- endif -%}{%- endfor -%}{%- endif -%}"
    "{%- endmacro -%}"
    "{%- if messages[0]['role'] != 'system' and default_system is defined and default_system -%}"
    "{{- '<|im_start|>system\n' + default_system + '<|im_end|>\n' -}}"
    "{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{- '<|im_start|>assistant\n' -}}"
    "{% generation %}{{- render(message['content']) + '<|im_end|>' -}}{% endgeneration %}"
    "{{- '\n' -}}"
    "{%- else -%}"
    "{{- '<|im_start|>' + message['role'] + '\n' + render(message['content']) + '<|im_end|>\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}"
)
"""ChatML (Qwen2.5 / InternLM2-chat / InternVL2 format). Image parts render as ``image_placeholder``
(default ``<image>``) plus a newline, as InternVL puts ``<image>\\n`` before the question; the processor
expands each into ``<img>`` + ``<IMG_CONTEXT>`` x N + ``</img>``. ``default_system`` (optional) adds a
system turn when the conversation has none."""

TINY_VOCAB_SIZE = 1536


@functools.lru_cache(maxsize=4)
def _tiny_tokenizer_json(vocab_size: int) -> str:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(SPECIAL_TOKENS) - len(THINK_TOKENS),
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    return tok.to_str()


def build_tiny_tokenizer(vocab_size: int = TINY_VOCAB_SIZE):
    """A fresh ``PreTrainedTokenizerFast``: byte-level BPE on the built-in corpus + special tokens.

    Deterministic: the same ids on every call and machine. Lossless on any text:

    >>> tok = build_tiny_tokenizer()
    >>> s = "Ünïcödé ∑ 12345 \\t<x> 🙂"
    >>> tok.decode(tok.encode(s)) == s
    True
    >>> tok.tokenize("2024")
    ['2', '0', '2', '4']
    """
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer.from_str(_tiny_tokenizer_json(vocab_size))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, clean_up_tokenization_spaces=False)
    return finish_tokenizer(tok)


def finish_tokenizer(tok, *, image_tokens: bool = True, think_tokens: bool = True):
    """Add what every tokenizer here needs (idempotent): ChatML and think tokens, the image tokens,
    pad/eos, the chat template. Returns ``tok``; when ``len(tok)`` grew, resize the model's embeddings.
    ``think_tokens=False`` leaves ``<think>``/``</think>`` as text the vocabulary already spells (a pretrained
    model's new token would start untrained: a short fine-tune never learns to emit it)."""
    specials = [t for t in SPECIAL_TOKENS if image_tokens or t not in (IMG_START, IMG_END, IMG_CONTEXT)]
    vocab = tok.get_vocab()
    missing_special = [t for t in specials if t not in vocab]
    if missing_special:
        tok.add_special_tokens({"additional_special_tokens": missing_special},
                               replace_extra_special_tokens=False)
    missing_think = [t for t in THINK_TOKENS if think_tokens and t not in tok.get_vocab()]
    if missing_think:
        tok.add_tokens(missing_think, special_tokens=False)
    if tok.pad_token is None:
        tok.pad_token = PAD if PAD in tok.get_vocab() else IM_END
    if tok.eos_token is None or tok.eos_token == PAD:
        tok.eos_token = IM_END
    tok.chat_template = CHAT_TEMPLATE
    tok.padding_side = "right"
    return tok
