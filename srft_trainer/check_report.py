# Copyright 2026 The srft-trainer authors. Licensed under the Apache License, Version 2.0.
"""The outcome of `srft check`: facts, notes and named problems (shared by `check` and `check_local`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CheckReport:
    """
    The outcome of [`check_recipe`].

    Args:
        recipe (`str`): the recipe's path.
        facts (`list[tuple[str, str]]`): what the recipe amounts to (batch, rollouts, tokens...), label and text.
        notes (`list[str]`): what was skipped or is worth knowing; never a failure.
        problems (`list[tuple[str, str]]`): named problems (`keys`, `batch`, `demos`, `vllm`, `model`, `context`,
            `chat_template`, `overrides`, `data`, `demo_length`, `rewards`, `world`, `config`, `recipe`, `output_dir`)
            and their messages.
    """

    recipe: str
    facts: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, name: str, message: str) -> None:
        self.problems.append((name, message))

    def format(self) -> str:
        lines = [f"srft check: {self.recipe}"]
        width = max((len(label) for label, _ in self.facts), default=0)
        lines += [f"  {label:<{width}}  {text}" for label, text in self.facts]
        if self.notes:
            lines.append("notes:")
            lines += [f"  - {note}" for note in self.notes]
        if self.problems:
            lines.append(f"FAIL: {len(self.problems)} problem(s)")
            lines += [f"  [{name}] {message}" for name, message in self.problems]
        else:
            lines.append("PASS")
        return "\n".join(lines)
