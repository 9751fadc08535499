"""The documentation runs as written, and the documentation site builds without warnings.

What is checked, and how:

- Every ```python block of README.md and of docs/**/*.md runs: the blocks of one page in
  order, in one namespace, in a fresh temporary working directory, with ``SKLCIFAR_DATA``
  naming the real CIFAR-10 archive (skipped where it is absent). Tracebacks point at the
  page's own line numbers.
- Shell blocks (```bash) are not run: they install packages, train for minutes or name
  files only a reader has. Instead every command in them that starts with ``sklcifar`` (or
  ``python -m sklcifar``) is parsed by the real parser, ``sklcifar.cli.build_parser()``, so
  a renamed subcommand or option, a missing required option or a bad value fails here
  without any training; every ``python some/script.py`` must name a script of the
  repository. Other commands (pip, export, pytest, ...) are not checked.
- ``sklcifar --help`` and each subcommand's ``--help`` run through the command's entry
  point in a subprocess, and print no TensorFlow log lines.
- ``sphinx-build -W`` builds the site (API reference, user guide, and the examples
  gallery, whose scripts run on small real subsets) into a temporary folder.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sklcifar.cli import COMMANDS, build_parser

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
# Folders of docs/ that Sphinx writes into; their pages are not the documentation's source.
_GENERATED = ("_build", "generated", "auto_examples")
PAGES = sorted(
    [REPO / "README.md"]
    + [
        page
        for page in DOCS.rglob("*.md")
        if not set(page.relative_to(DOCS).parts) & set(_GENERATED)
    ]
)
_FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", flags=re.MULTILINE | re.DOTALL)
# What TensorFlow's C++ runtime prints: glog-style prefixes (I0000 00:00:...), absl's
# notice, and the oneDNN / CPU-instruction start-up lines.
TENSORFLOW_LOG = re.compile(
    r"^[IWEF]\d{4} \d\d:\d\d|absl::|oneDNN|cpu_feature_guard|TensorFlow binary",
    flags=re.MULTILINE,
)


def _blocks(page: Path, languages: tuple[str, ...]) -> list[tuple[int, str]]:
    """(line number of the block's first line, code) of each fenced block in ``languages``."""
    text = page.read_text()
    return [
        (text.count("\n", 0, match.start(2)) + 1, match.group(2))
        for match in _FENCE.finditer(text)
        if match.group(1) in languages
    ]


def _page_id(page: Path) -> str:
    return str(page.relative_to(REPO))


PYTHON_PAGES = [page for page in PAGES if _blocks(page, ("python",))]


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=_page_id)
def test_python_blocks_run(page, cifar10_path, monkeypatch, tmp_path):
    monkeypatch.setenv("SKLCIFAR_DATA", str(cifar10_path))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__main__"}
    for first_line, code in _blocks(page, ("python",)):
        # Leading blank lines make the page's line numbers the traceback's.
        source = "\n" * (first_line - 1) + code
        exec(compile(source, str(page), "exec"), namespace)


def _shell_commands(code: str) -> list[list[str]]:
    """The simple commands of a shell block, as argument lists without VAR=value prefixes."""
    commands = []
    for line in code.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        command: list[str] = []
        for word in [*words, "&&"]:
            if word in ("&&", "||", ";", "|"):
                while command and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", command[0]):
                    command.pop(0)
                if command:
                    commands.append(command)
                command = []
            else:
                command.append(word)
    return commands


SHELL_COMMANDS = [
    (page, command)
    for page in PAGES
    for _, code in _blocks(page, ("bash", "sh", "shell", "console"))
    for command in _shell_commands(code)
]


def test_shell_blocks_were_found():
    assert any(command[0] == "sklcifar" for _, command in SHELL_COMMANDS)


@pytest.mark.parametrize(
    ("page", "command"),
    SHELL_COMMANDS,
    ids=[f"{_page_id(page)}: {shlex.join(command)[:60]}" for page, command in SHELL_COMMANDS],
)
def test_shell_command_is_valid(page, command):
    if command[0] == "sklcifar" or command[:3] == ["python", "-m", "sklcifar"]:
        argv = command[1:] if command[0] == "sklcifar" else command[3:]
        try:
            build_parser().parse_args(argv)
        except SystemExit as exc:  # --help prints the help and exits 0
            assert exc.code == 0, f"{_page_id(page)}: {shlex.join(command)} exits {exc.code}"
    elif command[0] == "python" and len(command) > 1 and command[1].endswith(".py"):
        assert (REPO / command[1]).is_file(), f"{_page_id(page)} runs a missing {command[1]}"


def test_help_prints_no_tensorflow_log_lines():
    # The console script's own entry point, once per help form, in one fresh process.
    forms = [["--help"]] + [[name, "--help"] for name in COMMANDS]
    script = (
        "import sys\n"
        "from sklcifar.__main__ import main\n"
        f"for argv in {forms!r}:\n"
        "    sys.argv = ['sklcifar', *argv]\n"
        "    assert main() == 0, argv\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("TF_CPP")}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    for name in COMMANDS:
        assert f"usage: sklcifar {name}" in result.stdout
    output = result.stdout + result.stderr
    assert not TENSORFLOW_LOG.search(output), TENSORFLOW_LOG.search(output).group(0)


def test_documentation_site_builds_without_warnings(cifar10_path, tmp_path):
    # A copy of the sources, so that the files Sphinx generates stay out of the checkout.
    shutil.copytree(DOCS, tmp_path / "docs", ignore=shutil.ignore_patterns(*_GENERATED))
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    env = {**os.environ, "SKLCIFAR_DATA": str(cifar10_path), "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
        + [str(tmp_path / "docs"), str(tmp_path / "html")],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    for page in ("index.html", "api.html", "auto_examples/index.html"):
        assert (tmp_path / "html" / page).is_file()
