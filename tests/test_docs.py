"""What the README and docs/ tell people to type exists: commands, their flags, settings, make targets."""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CODE = [
    p
    for folder in ("cli", "flows", "tasks", "blocks", "webapp", "sandbox", "tests")
    for p in (ROOT / folder).rglob("*.py")
]


def _code_texts() -> list[str]:
    """Inline code spans and the lines of fenced blocks: what a person copies."""
    texts = []
    for doc in DOCS:
        text = doc.read_text()
        for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
            texts += block.splitlines()
        texts += re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    return texts


# Commands whose first word is an action with flags of its own.
SUBCOMMANDS = {
    "customer": (
        "list",
        "show",
        "remove",
        "set-csm",
        "set-frequency",
        "set-mapping-cadence",
        "set-sftp",
        "set-grace",
    )
}


@cache
def _help(*command: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *command, "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow  # runs the CLI's --help once per command
def test_every_command_and_flag_the_docs_name_exists():
    uses = []
    for text in _code_texts():
        for match in re.finditer(r"hris-runbook ([a-z-]+)((?:\s+(?:--[a-z-]+|[^\s-][^\s]*))*)", text):
            command, rest = match.group(1), match.group(2)
            words = rest.split()
            if command in SUBCOMMANDS and words:  # `hris-runbook customer set-csm …`: the action's flags
                assert words[0] in SUBCOMMANDS[command], (
                    f"the docs name `hris-runbook {command} {' '.join(words[:1])}`: expected one of "
                    f"{SUBCOMMANDS[command]}"
                )
                command = f"{command} {words[0]}"
            uses.append((command, re.findall(r"--[a-z-]+", rest)))
        for match in re.finditer(r"(?:^|\s)`?up ((?:--[a-z-]+\s*)+)", text):
            uses.append(("up", re.findall(r"--[a-z-]+", match.group(1))))
    assert uses, "the docs name no hris-runbook command"
    commands = _help()
    for command, flags in uses:
        assert re.search(rf"\b{command.split()[0]}\b", commands), (
            f"the docs name `hris-runbook {command}`, which does not exist"
        )
        for flag in flags:
            assert flag in _help(*command.split()), (
                f"the docs name `hris-runbook {command} {flag}`, which it does not take"
            )


def test_every_setting_the_docs_name_is_read_by_the_code():
    code = "\n".join(p.read_text() for p in CODE)
    named = {s for doc in DOCS for s in re.findall(r"\bHRIS_[A-Z_]+\b", doc.read_text())}
    assert named
    missing = sorted(s for s in named if s not in code)
    assert not missing, f"the docs name settings no code reads: {missing}"


def test_every_make_target_the_docs_name_exists():
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    named = {m for text in _code_texts() for m in re.findall(r"\bmake ([a-z][a-z-]*)", text)}
    assert named and named <= targets, (
        f"the docs name make targets that do not exist: {sorted(named - targets)}"
    )


def test_the_readme_layout_names_every_module_and_only_modules_that_exist():
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout") :]
    for folder in ("cli", "flows", "tasks", "webapp", "sandbox", "benchmarks"):
        row = next(line for line in layout.splitlines() if line.startswith(f"| `{folder}/` |"))
        named = set(re.findall(r"`([a-z_]+\.py)`", row))
        modules = {p.name for p in (ROOT / folder).glob("*.py") if p.name != "__init__.py"}
        assert named == modules, (
            f"README layout, {folder}/: missing {sorted(modules - named)}, gone {sorted(named - modules)}"
        )
