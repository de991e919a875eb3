"""XLM-R style tokenizer on sentencepiece, with the ids of transformers 4.x's slow tokenizer.

The official code calls ``XLMRobertaTokenizer(prompt)["input_ids"]`` (slow, sentencepiece).
Its ids are fairseq's: <s>=0 <pad>=1 </s>=2 <unk>=3, a sentencepiece piece p maps to
``id(p) + 1`` (sentencepiece's own unk, id 0, maps to 3), <mask> = len(vocab) + 1, and
added tokens (``[semantic]`` in the multitask checkpoints) keep the ids their files give
and are matched as whole tokens before sentencepiece sees the text. We call sentencepiece
directly: transformers 5.x converts the model to a fast BPE whose ids differ.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from pathlib import Path
from typing import Mapping

from evf_sam_ros.model.errors import CheckpointError, PromptError

SP_MODEL_FILE = 'sentencepiece.bpe.model'
SPECIAL_IDS = {'<s>': 0, '<pad>': 1, '</s>': 2, '<unk>': 3}
FAIRSEQ_OFFSET = 1
SEMANTIC_TOKEN = '[semantic]'
#: Prompts whose checked ids a tokenizer keeps (least recently used dropped first), so a
#: prompt is cleaned and tokenized once, not on every frame it is segmented on. 0 = no cache.
TOKEN_CACHE_SIZE = 256


class EvfTokenizer:
    """Text -> token ids exactly as the official (slow XLM-R) tokenizer produces them.

    ``prompt_ids`` works a prompt out once: its ids are kept for the next TOKEN_CACHE_SIZE
    prompts (``cache_info()`` counts hits and misses). Thread-safe.
    """

    def __init__(self, sp_model_path: str | Path, added_tokens: Mapping[str, int] | None = None):
        import sentencepiece as spm

        path = Path(sp_model_path)
        if not path.is_file():
            raise CheckpointError(
                f'tokenizer model {path} is missing; a checkpoint needs {SP_MODEL_FILE}'
            )
        self._sp = spm.SentencePieceProcessor()
        try:
            self._sp.Load(str(path))
        except (OSError, RuntimeError) as exc:
            raise CheckpointError(
                f'tokenizer model {path} is not a sentencepiece model: {exc}'
            ) from exc
        self.mask_id = len(self._sp) + FAIRSEQ_OFFSET
        self.added_tokens = dict(added_tokens or {})
        whole = {**SPECIAL_IDS, '<mask>': self.mask_id, **self.added_tokens}
        self._whole_tokens = whole
        alternatives = sorted(whole, key=len, reverse=True)
        self._split_re = re.compile('(' + '|'.join(re.escape(t) for t in alternatives) + ')')
        self._prompt_ids = functools.lru_cache(maxsize=TOKEN_CACHE_SIZE)(self._checked_ids)
        self.cache_info = self._prompt_ids.cache_info

    @classmethod
    def from_dir(cls, directory: str | Path) -> 'EvfTokenizer':
        """Load from a checkpoint directory (sentencepiece.bpe.model + added tokens files)."""
        directory = Path(directory)
        return cls(directory / SP_MODEL_FILE, read_added_tokens(directory))

    @property
    def is_multitask(self) -> bool:
        """True when the ``[semantic]`` token exists (evf-sam*-multitask checkpoints)."""
        return SEMANTIC_TOKEN in self.added_tokens

    @property
    def vocab_size(self) -> int:
        """Largest id this tokenizer can produce, plus one."""
        return max([self.mask_id, *self.added_tokens.values()]) + 1

    def prompt_ids(self, prompt: object, limit: int) -> list[int]:
        """Token ids of ``prompt`` after ``clean_prompt``, at most ``limit`` of them (with <s>
        and </s>); worked out once per prompt and kept. Raises PromptError (not text, empty,
        unprintable, too long).
        """
        if not isinstance(prompt, str):  # not text (maybe unhashable): clean_prompt says so
            clean_prompt(prompt)
        return list(self._prompt_ids(prompt, limit))

    def _checked_ids(self, prompt: str, limit: int) -> tuple[int, ...]:
        ids = self.encode(clean_prompt(prompt))
        if len(ids) > limit:
            raise PromptError(
                f'the prompt is {len(ids)} tokens long; the model accepts at most '
                f'{limit} (with <s> and </s>); shorten it'
            )
        return tuple(ids)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``: [0, ..., 2] with no padding or truncation."""
        ids = [SPECIAL_IDS['<s>']]
        for part in self._split_re.split(text):
            if part in self._whole_tokens:
                ids.append(self._whole_tokens[part])
            elif part.strip():
                ids.extend(self._piece_id(p) for p in self._sp.EncodeAsIds(part.strip()))
        ids.append(SPECIAL_IDS['</s>'])
        return ids

    @staticmethod
    def _piece_id(sp_id: int) -> int:
        return sp_id + FAIRSEQ_OFFSET if sp_id != 0 else SPECIAL_IDS['<unk>']


def read_added_tokens(directory: Path) -> dict[str, int]:
    """Non-special added tokens from added_tokens.json and tokenizer_config.json."""
    tokens: dict[str, int] = {}
    added_file = directory / 'added_tokens.json'
    if added_file.is_file():
        tokens.update({str(k): int(v) for k, v in _read_json(added_file).items()})
    config_file = directory / 'tokenizer_config.json'
    if config_file.is_file():
        decoder = _read_json(config_file).get('added_tokens_decoder', {})
        for token_id, entry in decoder.items():
            content = entry.get('content') if isinstance(entry, dict) else None
            if content and content not in SPECIAL_IDS and content != '<mask>':
                tokens[content] = int(token_id)
    return tokens


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding='utf-8'))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f'{path} is not readable JSON: {exc}') from exc


def normalize_prompt(text: str) -> str:
    """White space collapsed to single spaces, ends stripped (what every prompt check does)."""
    return ' '.join(str(text).split())


def clean_prompt(prompt: object) -> str:
    """Validate a prompt and normalise its white space.

    Raises PromptError for non-strings, empty or white-space-only prompts, and prompts with
    control characters other than tab and newline (those become spaces).
    """
    if not isinstance(prompt, str):
        raise PromptError(f'a prompt must be a str, got {type(prompt).__name__}')
    bad = sorted(
        {
            f'U+{ord(c):04X}'
            for c in prompt
            if unicodedata.category(c) in ('Cc', 'Cs', 'Co', 'Cn') and c not in '\t\n\r'
        }
    )
    if bad:
        raise PromptError(f'the prompt holds non-printable characters {bad[:5]}; send plain text')
    text = normalize_prompt(prompt)
    if not text:
        raise PromptError("the prompt is empty; name the target, e.g. 'the red mug'")
    return text
