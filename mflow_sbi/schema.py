"""Typed configuration tables: dataclasses whose fields declare the values they accept.

A table is a dataclass deriving from :class:`Table`; every field is declared with :func:`setting`, which
gives its default and a :class:`Rule`. Constructing a table checks every field, so a wrong value fails with
a message naming the key, the value and what is allowed::

    inference.walkers must be an integer >= 2, got 'many'

TOML integers are Python ints and TOML floats are floats, so ``n_train = 2e4`` is rejected where an
integer is required; booleans are never taken for numbers. :func:`from_table` builds a table from a parsed
TOML table and rejects unknown keys; keys that are absent take the field defaults, which are the only
defaults (the embedded ``default_run.toml`` equals them).

Dataclasses rather than pydantic: the tables are small and flat, the rules fit in this module, and the
package gains no dependency.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from mflow_sbi.errors import ConfigError

T = TypeVar("T", bound="Table")


@dataclass(frozen=True)
class Rule:
    """What a key accepts: ``allowed`` (for messages) and a predicate on the value."""

    allowed: str
    accepts: Callable[[Any], bool]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def integer(minimum: int | None = None) -> Rule:
    """An integer, ``>= minimum`` when given."""
    bound = "" if minimum is None else f" >= {minimum}"
    return Rule(f"an integer{bound}", lambda v: _is_int(v) and (minimum is None or v >= minimum))


def number(low: float | None = None, high: float | None = None, *, strict_low: bool = False,
           strict_high: bool = True) -> Rule:
    """A finite number in the interval given by ``low`` / ``high`` (``strict_*``: open at that end)."""
    if low is not None and high is not None:
        what = f" in {'(' if strict_low else '['}{low:g}, {high:g}{')' if strict_high else ']'}"
    elif low is not None:
        what = f" {'>' if strict_low else '>='} {low:g}"
    else:
        what = ""

    def accepts(v: Any) -> bool:
        if not _is_number(v):
            return False
        above = low is None or (v > low if strict_low else v >= low)
        below = high is None or (v < high if strict_high else v <= high)
        return above and below

    return Rule(f"a number{what}", accepts)


def choice(options: Sequence[str]) -> Rule:
    """One of the strings ``options``."""
    options = tuple(options)
    return Rule(f"one of {options}", lambda v: isinstance(v, str) and v in options)


BOOLEAN = Rule("true or false", lambda v: isinstance(v, bool))
SUBTABLE = Rule("a table", lambda v: isinstance(v, dict))
NUMBERS = Rule("a non-empty array of numbers", lambda v: isinstance(v, list | tuple) and len(v) > 0
               and all(_is_number(x) for x in v))


def optional(rule: Rule) -> Rule:
    """``rule``, or unset (None: the value is then derived, see the field's documentation)."""
    return Rule(f"{rule.allowed} (or unset)", lambda v: v is None or rule.accepts(v))


def setting(default: Any, rule: Rule) -> Any:
    """A dataclass field with ``default`` (lists and dicts are copied per instance) checked by ``rule``."""
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"rule": rule})
    return dataclasses.field(default=default, metadata={"rule": rule})


class Table:
    """Base of the configuration tables: ``TABLE`` is the table's name in a configuration file."""

    TABLE: ClassVar[str]

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):  # type: ignore[arg-type]
            rule = item.metadata.get("rule")
            value = getattr(self, item.name)
            if rule is not None and not rule.accepts(value):
                raise ConfigError(f"{self.TABLE}.{item.name} must be {rule.allowed}, got {value!r}")


def from_table(cls: type[T], values: Any, where: str) -> T:
    """An instance of the table ``cls`` from a parsed TOML table; ``where`` (e.g. "job.toml [model]") prefixes
    messages about the table itself (not a table, unknown keys)."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a table, got {type(values).__name__}")
    known = [item.name for item in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(known)}")
    return cls(**values)

