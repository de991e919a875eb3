"""Prompt checks and the list of targets, shared by the node (commands, services) and the
replay (bag commands, --prompt), so both accept, normalise and refuse prompts the same way.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

from evf_sam_ros.model.errors import PromptError
from evf_sam_ros.model.tokenizer import clean_prompt
from evf_sam_ros.pipeline.problems import Problem


def check_prompt(
    text: str, max_chars: int, tokenize: Callable[[str], object] | None = None
) -> str:
    """The cleaned prompt, or PromptError: longer than ``max_chars`` characters, empty,
    unprintable, or (with ``tokenize``, e.g. EvfSamPredictor.tokenize) too many tokens.
    """
    if len(text) > max_chars:
        raise PromptError(
            f'prompt of {len(text)} characters refused (max_prompt_chars {max_chars})'
        )
    cleaned = clean_prompt(text)
    if tokenize is not None:
        tokenize(cleaned)
    return cleaned


@dataclass(frozen=True)
class NamedTarget:
    """One thing to find: ``id`` (>= 0, never reused while the node or replay runs; -1 for a
    one-shot request such as ~/segment or a find_target goal) and its cleaned ``prompt``.
    """

    id: int
    prompt: str


ONE_SHOT = -1


class TargetList:
    """The targets segmented on every frame: the primary target (set by the ``command`` topic
    and the ``prompt`` parameter; it serves the single-target outputs) first, then the
    targets added by topic or service, in the order added. Thread-safe.

    A command with a new prompt replaces the primary target (a new id: a new object); a
    blank command removes it; a refused one keeps it and is reported as ``prompt_rejected``.
    """

    def __init__(self, validate: Callable[[str], str]):
        self._validate = validate
        self._lock = threading.Lock()
        self._primary: NamedTarget | None = None
        self._added: list[NamedTarget] = []
        self._next_id = 0

    def snapshot(self) -> tuple[NamedTarget, ...]:
        """Every target, primary first."""
        with self._lock:
            return ((self._primary,) if self._primary else ()) + tuple(self._added)

    @property
    def primary_prompt(self) -> str:
        """The primary target's prompt ('' = none)."""
        with self._lock:
            return self._primary.prompt if self._primary else ''

    def _new(self, prompt: str) -> NamedTarget:
        target = NamedTarget(self._next_id, prompt)
        self._next_id += 1
        return target

    def command(self, text: str, source: str = 'command') -> Problem | None:
        """Set (or with blank ``text`` remove) the primary target; a Problem when refused."""
        try:
            cleaned = '' if not text.strip() else self._validate(text)
        except PromptError as exc:
            return Problem(
                'prompt_rejected', f"{source} refused, keeping '{self.primary_prompt}': {exc}"
            )
        with self._lock:
            if not cleaned:
                self._primary = None
            elif self._primary is None or self._primary.prompt != cleaned:
                self._primary = self._new(cleaned)
        return None

    def add(self, text: str) -> NamedTarget:
        """Add a target (after the others); raises PromptError for a bad prompt."""
        cleaned = self._validate(text)
        with self._lock:
            target = self._new(cleaned)
            self._added.append(target)
        return target

    def remove(self, target_id: int) -> bool:
        """Remove the target with ``target_id`` (primary or added); False if there is none."""
        with self._lock:
            if self._primary is not None and self._primary.id == target_id:
                self._primary = None
                return True
            kept = [t for t in self._added if t.id != target_id]
            found, self._added = len(kept) != len(self._added), kept
            return found

    def clear(self) -> int:
        """Remove every target; returns how many there were."""
        with self._lock:
            count = len(self._added) + (self._primary is not None)
            self._primary, self._added = None, []
            return count
