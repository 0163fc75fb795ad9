"""What import-linter's contracts (pyproject.toml, ``lint-imports``) cannot say, read from the
source: the domain uses none of the standard library's I/O, and no SQL string has a value
formatted into it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("streams", "schemas", "sinks", "deploy")


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (functions included)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
    return out


def _violations(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in paths
        for name in sorted(_imports(path))
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]


def test_the_domain_opens_no_socket_or_url() -> None:
    """The standard library's I/O, which import-linter does not follow (pyproject.toml holds the
    rest of the layering)."""
    assert _violations(_modules("streams/domain"), ("urllib", "socket", "http")) == []


# ------------------------------------------------------------------ SQL with values
_SQL = re.compile(r"\b(SELECT|INSERT|WHERE|CREATE|ALTER|DELETE|UPDATE)\b")
#: Text right before a formatted field that means the field is a value, not an identifier.
_VALUE_CONTEXT = re.compile(
    r"""(['"]|[=<>]\s*|\bIN\s*\(?\s*|\bLIKE\s*|\bLIMIT\s*|,\s*'|\(\s*'|\bBETWEEN\s*)$""", re.I
)


#: ... except where SQL's own grammar puts a name after ``=``: a table's engine.
_IDENTIFIER_CONTEXT = re.compile(r"\bENGINE\s*=\s*$")


def sql_value_formatting(source: str, name: str = "<string>") -> list[str]:
    """Places where an f-string, ``%`` or ``.format`` puts a value into SQL text."""
    problems = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.JoinedStr):
            text = ""
            for part in node.values:
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    text += part.value
                elif isinstance(part, ast.FormattedValue):
                    value = _VALUE_CONTEXT.search(text) and not _IDENTIFIER_CONTEXT.search(text)
                    if value and _SQL.search(_whole(node)):
                        problems.append(f"{name}:{node.lineno}: value formatted into SQL")
                    text += "{}"
        elif (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Mod)
            and isinstance(node.left, ast.Constant)
            and isinstance(node.left.value, str)
            and _SQL.search(node.left.value)
        ):
            problems.append(f"{name}:{node.lineno}: %-formatted SQL")
    return problems


def _whole(node: ast.JoinedStr) -> str:
    return "".join(p.value for p in node.values if isinstance(p, ast.Constant) and isinstance(p.value, str))


def test_no_sql_string_has_a_value_formatted_into_it() -> None:
    paths = [p for pkg in (*PACKAGES, "tests") for p in (ROOT / pkg).rglob("*.py")]
    problems = [
        problem
        for path in paths
        if path.name != Path(__file__).name
        for problem in sql_value_formatting(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert problems == []


@pytest.mark.parametrize(
    "bad",
    [
        "f\"SELECT * FROM t WHERE id = '{x}'\"",
        'f"SELECT * FROM t WHERE n >= {n}"',
        'f"SELECT * FROM t WHERE id IN ({ids})"',
        "\"SELECT * FROM t WHERE id = '%s'\" % x",
    ],
)
def test_the_sql_check_catches_formatted_values(bad: str) -> None:
    assert sql_value_formatting(bad)


def test_the_sql_check_allows_identifiers_and_placeholders() -> None:
    ok = 'f"SELECT count() FROM {db}.{table.name} WHERE e = {{e:String}}"'
    assert sql_value_formatting(ok) == []
