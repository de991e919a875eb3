"""Prompt checks and the current prompt, shared by the node's commands and the replay's bag
commands, so both accept, normalise and refuse prompts the same way."""

from __future__ import annotations

import threading
from typing import Callable, Optional

from ..model.errors import PromptError
from ..model.tokenizer import clean_prompt
from .problems import Problem


def normalize_prompt(text: str) -> str:
    """White space collapsed to single spaces, ends stripped (what every check returns)."""
    return ' '.join(str(text).split())


def check_prompt(text: str, max_chars: int,
                 tokenize: Optional[Callable[[str], object]] = None) -> str:
    """The cleaned prompt, or PromptError: longer than ``max_chars`` characters, empty,
    unprintable, or (with ``tokenize``, e.g. EvfSamPredictor.tokenize) too many tokens."""
    if len(text) > max_chars:
        raise PromptError(f'prompt of {len(text)} characters refused (max_prompt_chars '
                          f'{max_chars})')
    cleaned = clean_prompt(text)
    if tokenize is not None:
        tokenize(cleaned)
    return cleaned


class CurrentPrompt:
    """The prompt commands set: an empty command clears it (idle), a refused one keeps the
    previous prompt and is reported as ``prompt_rejected``. Thread-safe."""

    def __init__(self, validate: Callable[[str], str]):
        self._validate = validate
        self._lock = threading.Lock()
        self._text = ''

    @property
    def text(self) -> str:
        """The current prompt ('' = idle)."""
        with self._lock:
            return self._text

    def apply(self, command: str, source: str = 'command') -> Optional[Problem]:
        """Set (or with blank ``command`` clear) the prompt; a Problem when refused."""
        try:
            cleaned = '' if not command.strip() else self._validate(command)
        except PromptError as exc:
            return Problem('prompt_rejected', f"{source} refused, keeping '{self.text}': {exc}")
        with self._lock:
            self._text = cleaned
        return None
