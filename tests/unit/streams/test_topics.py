"""Derived names have one author: the local tables' and their changelogs' names, dead-letter
headers and table key prefixes are spelled in streams/topics.py only (read from the source), and
topics.py stands on nothing above settings and errors."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from streams.settings import Settings
from streams.topics import (
    PERSONAL_KEY_TOPICS,
    LocalTable,
    Topic,
    changelog_name,
    is_changelog,
)

ROOT = Path(__file__).resolve().parents[3]
TOPICS = ROOT / "streams" / "topics.py"
# What a module would spell if it derived a name itself: a changelog topic (``<app>-<table>-changelog``),
# a dead-letter header (``dlq.reason``) or a key prefix of ``household_reports`` (``r|``, ``i|``).
DERIVED = re.compile(r"-changelog|\bdlq\.[a-z_]+|^[ri]\|")


def _strings(path: Path) -> list[tuple[int, str]]:
    """Every string literal of ``path`` (f-strings' literal parts included), docstrings aside:
    prose may name a header or a changelog, code may not."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def _spelled(path: Path) -> list[str]:
    tables = {t.value for t in LocalTable}
    return [
        f"{path.relative_to(ROOT)}:{line}: {text!r}"
        for line, text in _strings(path)
        if DERIVED.search(text) or text in tables
    ]


def test_no_module_but_topics_spells_a_table_or_changelog_name_a_header_or_a_key_prefix() -> None:
    code = [p for package in ("streams", "sinks", "deploy") for p in sorted((ROOT / package).rglob("*.py"))]
    assert [s for path in code if path != TOPICS for s in _spelled(path)] == []


def test_topics_declares_what_the_others_read() -> None:
    """The scan above finds these spellings where they are declared, so it would find them elsewhere."""
    spelled = " ".join(_spelled(TOPICS))
    for name in (
        "-changelog",
        "dlq.reason",
        "dlq.topic",
        "dlq.index",
        "dlq.truncated_from",
        "'r|'",
        "'i|'",
        "'registry'",
    ):
        assert name in spelled


def test_topics_stands_on_settings_and_errors_only() -> None:
    tree = ast.parse(TOPICS.read_text())
    imported = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and node.module
        and node.module.split(".")[0] in ("streams", "sinks")
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
        if alias.name.split(".")[0] in ("streams", "sinks")
    }
    assert imported <= {"streams.settings", "streams.errors"}


def test_changelog_names_are_fausts() -> None:
    """Faust names a table's changelog ``<app id>-<table>-changelog``; restore, rotate-key and the
    registry snapshot read the topics by these names."""
    app_id = Settings(app_id="dampak-x").app_id
    assert [changelog_name(t, app_id) for t in LocalTable] == [
        "dampak-x-registry-changelog",
        "dampak-x-household_reports-changelog",
        "dampak-x-report_copies-changelog",
    ]
    assert is_changelog("dampak-x-registry-changelog", app_id)
    assert is_changelog("dampak-x-old_table-changelog", app_id)  # an earlier version's table too
    assert not is_changelog("other-registry-changelog", app_id)
    assert not is_changelog("dampak-x-registry", app_id)


def test_personal_keys_are_the_household_flows_keys() -> None:
    """Dead letters of these flows have their key pseudonymised inside the payload too."""
    assert {Topic.HOUSEHOLDS, Topic.HOUSEHOLDS_BY_ID, Topic.REPORTS_BY_HOUSEHOLD} == PERSONAL_KEY_TOPICS
