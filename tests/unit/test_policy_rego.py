"""Run the Rego unit tests (policy/rego/*_test.rego) in regopy: rego-cpp has no `opa test`.

Every `test_*` rule of every test module is one pytest test, evaluated against the bundled
policy and limits; it passes when the rule is true (a failing Rego test is undefined).
"""

from __future__ import annotations

import json
import re

import pytest

from qlrf_pipelines.planning.limits import LIMITS_FILE
from qlrf_pipelines.policy.engine import REGO_DIR, policy_files

TEST_FILES = sorted(REGO_DIR.glob("*_test.rego"))
PACKAGE = re.compile(r"^package\s+([\w.]+)", re.M)
TEST_RULE = re.compile(r"^(test_\w+)\s+if\b", re.M)


def discover() -> list[tuple[str, str]]:
    """(package, rule) of every test rule; read from the source so a failing test is still listed."""
    found = []
    for path in TEST_FILES:
        text = path.read_text(encoding="utf-8")
        [package] = PACKAGE.findall(text)
        found += [(package, rule) for rule in TEST_RULE.findall(text)]
    return found


TESTS = discover()


@pytest.fixture(scope="module")
def interpreter():
    from regopy import Interpreter

    rego = Interpreter()
    rego.add_data({"qlrf": {"limits": json.loads(LIMITS_FILE.read_text(encoding="utf-8"))}})
    for path in policy_files() + TEST_FILES:
        rego.add_module(path.name, path.read_text(encoding="utf-8"))
    return rego


def test_rego_tests_are_found():
    assert TEST_FILES, f"no *_test.rego under {REGO_DIR}"
    assert TESTS, "no test_* rules in the Rego test modules"
    assert len(set(TESTS)) == len(TESTS), "a Rego test rule is defined twice"


def test_rego_tests_avoid_with_input():
    """`with input as ...` crashes rego-cpp (the whole pytest process), so tests call functions."""
    for path in TEST_FILES:
        code = [line.split("#", 1)[0] for line in path.read_text(encoding="utf-8").splitlines()]
        assert not any(re.search(r"\bwith\s+input\b", line) for line in code), path.name


def passes(interpreter, package: str, rule: str) -> bool:
    """True when the rule evaluates to true; a failing Rego test prints as `undefined`."""
    output = interpreter.query(f"data.{package}.{rule}")
    assert output.ok(), str(output)
    return str(output).strip() == '{"expressions":[true]}'


@pytest.mark.parametrize(("package", "rule"), TESTS, ids=[rule for _, rule in TESTS])
def test_rego(interpreter, package: str, rule: str):
    assert passes(interpreter, package, rule), f"Rego test {package}.{rule} is not true"


def test_a_failing_rego_test_is_reported():
    from regopy import Interpreter

    rego = Interpreter()
    rego.add_module("failing_test.rego", "package failing_test\n\nimport rego.v1\n\ntest_false if { 1 == 2 }\n")

    assert not passes(rego, "failing_test", "test_false")
