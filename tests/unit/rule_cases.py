"""The failing/passing case checks shared by the rule test files that judge a base of their own
(test_rules_engine.py: an ``engine: torch`` base; test_rules_script.py: an ``entry_point:`` base)."""

from __future__ import annotations

import copy
from collections.abc import Callable

from smlaunch.layout import resolve
from smlaunch.spec.load import load_spec
from smlaunch.spec.rules import RULES, check


def runner(base: dict) -> tuple[Callable, Callable]:
    """(spec_of(overrides), run(rule_id, overrides)) on ``base``."""

    def spec_of(overrides=None):
        return load_spec(copy.deepcopy(base), overrides or {})

    def run(rule_id, overrides=None):
        spec = spec_of(overrides)
        return RULES[rule_id](spec, resolve(spec))

    return spec_of, run


def assert_fails(run: Callable, case: tuple) -> None:
    """The rule fires at the case's field with its severity, a message holding the case's text, and its fix."""
    rule_id, overrides, severity, field, message, fix = case
    match = [f for f in run(rule_id, overrides) if f.field == field]
    assert match, (rule_id, overrides)
    found = match[0]
    assert (found.rule, found.severity, RULES[rule_id].severity) == (rule_id, severity, severity)
    assert message in found.message
    assert found.fix == fix


def assert_cases_cover(spec_of: Callable, failing: list, passing: list, rule_ids: list[str]) -> None:
    """Every rule of the group has both kinds of case, and ``check`` reports each failing case."""
    assert {c[0] for c in failing} == {c[0] for c in passing} == set(rule_ids)
    missed = [(r, o) for r, o, *_ in failing if r not in {f.rule for f in check(spec_of(o)).findings}]
    assert missed == []
