"""The code shown in README.md and docs/*.md runs, so that it cannot rot.

- Every ```python block runs alone: a fresh namespace and a fresh, empty working directory
  for each block, because a reader copies one block, not a page. A block that cannot run
  here carries the HTML comment ``<!-- norun: reason -->`` on the line before its fence.
- Every command line of a ```bash block is either run or listed in NOT_RUN with its reason;
  a command that is neither fails the test, so a new command in the docs gets a decision.
  ``python scripts/<name>.py ...`` lines run in this process (runpy, with sys.argv set) in a
  fresh working directory each; a line with ``--resume`` runs in the directory of the line
  before it, whose run it continues. Training lines run as given plus ``--dry-run`` (5 steps):
  every flag is parsed, the data loaded, the model trained, logged and saved, without the
  minutes of a full run. Sweep lines likewise (5 steps of each group).
- ```text blocks are output, and other languages (mermaid) pictures: not run.
- Relative links between the pages point at files and headings that exist, and the files
  (``torch_tanhnet/...``, ``scripts/...``) and modules (``torch_tanhnet.x.y``) they name exist.
"""

from __future__ import annotations

import importlib
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import run_as_main

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

# commands shown in the docs that this test does not run, by their first words
NOT_RUN = {
    ("pip", "install"): "installs the package; CI (.ci/run) runs README's install command itself",
    ("pytest",): "the test suite itself, which runs this file",
    ("tensorboard",): "starts a web server that runs until stopped",
    ("torchrun",): "starts several training processes (and machines); tests/test_distributed.py trains in two "
                   "processes through the same code, tests/test_sweep_distributed.py sweeps under torchrun itself",
    ("python", "scripts/bench.py"): "a timing benchmark of about 30 s whose output is measurements, not checks; "
                                    "tests/test_fast.py::test_bench_script_smoke runs it small",
    (".ci/gpu",): "needs a machine with a GPU",
}
# the training lines run with --dry-run added (see the module docstring); a sweep's, 5 steps of each group
DRY_RUN = {("python", "scripts/train.py"), ("python", "scripts/sweep.py")}
# what the pages' commands expect the reader to have: their own CSV of x1,x2,label rows
READER_FILES = {
    "my_points.csv": "x1,x2,label\n" + "".join(
        f"{(i % 7) / 3 - 1:.3f},{(i % 5) / 2 - 1:.3f},{int((i % 7) / 3 - 1 > (i % 5) / 2 - 1)}\n" for i in range(60)),
    # the repository's data files that commands name from its root
    "docs/experiments/xor/xor4.csv": (ROOT / "docs/experiments/xor/xor4.csv").read_text(),
}


@dataclass
class Block:
    page: Path
    line: int  # line of the first code line in the page (1-based)
    lang: str
    code: str
    norun: str | None  # the reason, when the block is marked <!-- norun: reason -->

    @property
    def where(self) -> str:
        page = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page
        return f"{page}:{self.line}"


FENCE = re.compile(r"^```(\w*)\s*$")
CODE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
NORUN = re.compile(r"^<!--\s*norun:(.*?)-->\s*$")


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
        assert end is not None, f"{page.relative_to(ROOT)}:{i + 1}: a code fence is never closed"
        marker = NORUN.match(lines[i - 1].strip()) if i > 0 else None
        found.append(Block(page, i + 2, m.group(1), "\n".join(lines[i + 1:end]) + "\n",
                           marker.group(1).strip() if marker else None))
        i = end + 1
    return found


def prose(page: Path) -> str:
    """The page without its code blocks."""
    return CODE.sub("", page.read_text(encoding="utf-8"))


def all_blocks(lang: str) -> list[Block]:
    return [b for page in PAGES for b in blocks(page) if b.lang == lang]


def commands(block: Block) -> list[list[str]]:
    """The command lines of a bash block as argument lists: continuations joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", block.code)
    return [argv for line in joined.splitlines() if (argv := shlex.split(line, comments=True))]


def not_run_reason(argv: list[str]) -> str | None:
    return next((why for first, why in NOT_RUN.items() if tuple(argv[:len(first)]) == first), None)


def run_python(block: Block) -> None:
    """Execute the block as a script, its line numbers those of the page (for tracebacks)."""
    code = compile("\n" * (block.line - 1) + block.code, str(block.page), "exec")
    exec(code, {"__name__": "__main__"})  # noqa: S102 -- running the docs' code is this test's purpose


def run_script(argv: list[str]) -> None:
    """``python scripts/x.py ARGS`` in this process, as the shell would run it; fails on a non-zero exit."""
    assert argv[0] == "python" and argv[1].startswith("scripts/") and argv[1].endswith(".py"), (
        f"not a script of this project: {argv}")
    code = run_as_main(argv[1].removeprefix("scripts/").removesuffix(".py"), argv[2:], stdout=sys.stdout,
                       stderr=sys.stderr)
    assert code == 0, f"{shlex.join(argv)} exited with {code}"


PYTHON_BLOCKS = all_blocks("python")
BASH_BLOCKS = all_blocks("bash")


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[b.where for b in PYTHON_BLOCKS])
def test_python_block_runs(block, tmp_path, monkeypatch):
    if block.norun is not None:
        assert block.norun, f"{block.where}: a norun marker needs its reason"
        pytest.skip(f"marked norun: {block.norun}")
    monkeypatch.chdir(tmp_path)
    run_python(block)


def run_commands(block: Block, tmp_path: Path, chdir) -> None:
    """Run the block's command lines in order, each in a fresh directory under tmp_path (see the docstring)."""
    cwd = None
    for n, argv in enumerate(commands(block)):
        if not_run_reason(argv) is not None:
            continue
        assert argv[0] == "python" and len(argv) > 1 and argv[1].startswith("scripts/"), (
            f"{block.where}: {shlex.join(argv)!r} is neither run by this test nor listed in NOT_RUN with a reason")
        if cwd is None or "--resume" not in argv:  # a --resume line continues the run of the line before
            cwd = tmp_path / str(n)
            cwd.mkdir()
            for name, text in READER_FILES.items():
                (cwd / name).parent.mkdir(parents=True, exist_ok=True)
                (cwd / name).write_text(text)
        chdir(cwd)
        if tuple(argv[:2]) in DRY_RUN and "--dry-run" not in argv:
            argv = [*argv, "--dry-run"]
        run_script(argv)


@pytest.mark.parametrize("block", BASH_BLOCKS, ids=[b.where for b in BASH_BLOCKS])
def test_command_lines_run_or_are_excluded_with_a_reason(block, tmp_path, monkeypatch):
    run_commands(block, tmp_path, monkeypatch.chdir)


def test_ci_installs_and_tests_exactly_as_readme_says():
    readme = [shlex.join(a) for b in blocks(ROOT / "README.md") if b.lang == "bash"
              for a in commands(b)]
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert len(ci) >= 2, f".ci/run has no install and test commands: {ci}"
    for line in ci:
        assert shlex.join(shlex.split(line)) in readme, f"README.md does not show CI's command {line!r}"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(m) for m in re.findall(r"^#+\s+(.*)$", prose(page), re.MULTILINE)}


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_relative_links_point_at_existing_files_and_headings(page):
    for target in re.findall(r"\]\(([^)\s]+)\)", prose(page)):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        assert dest.exists(), f"{page.relative_to(ROOT)}: link to {target!r}: no such file"
        if anchor and dest.suffix == ".md":
            assert anchor in anchors(dest), f"{page.relative_to(ROOT)}: link to {target!r}: no such heading"


def resolves(dotted: str) -> bool:
    """Whether ``a.b.c`` names a module or an attribute of one."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def unknown_names(page: Path) -> list[str]:
    """The repository paths and ``torch_tanhnet.*`` names in the page's prose that do not exist."""
    text = prose(page)
    paths = re.findall(r"`((?:torch_tanhnet|scripts|tests|docs|\.ci)/[^`\s]*)`", text)
    names = re.findall(r"`(torch_tanhnet(?:\.\w+)+)`", text)
    return [p for p in paths if not (ROOT / p).exists()] + [n for n in names if not resolves(n)]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_files_and_names_the_page_mentions_exist(page):
    assert unknown_names(page) == [], f"{page.relative_to(ROOT)} names files or modules that do not exist"


# the checks above can fail: a broken block, a failing command, an unlisted command


def test_a_broken_python_block_fails(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("text\n\n```python\nfrom torch import nn\nseq = nn.Sequential(nn.Linear(2, 3))\nTanhNet\n```\n")
    (block,) = blocks(page)
    with pytest.raises(NameError, match="TanhNet"):
        run_python(block)


def test_a_failing_command_fails(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssertionError, match="exited with 2"):
        run_script(["python", "scripts/train.py", "--dry-run", "--lr", "-1"])


def test_a_command_neither_run_nor_excluded_fails(tmp_path, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text("```bash\nmake everything  # a new command\n```\n")
    (block,) = blocks(page)
    with pytest.raises(AssertionError, match="neither run by this test nor listed in NOT_RUN"):
        run_commands(block, tmp_path, monkeypatch.chdir)


def test_a_moved_file_or_module_fails(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("`torch_tanhnet/fast.py` and `torch_tanhnet.distributed.end_process`, "
                    "not `torch_tanhnet/network.py` or `torch_tanhnet.training.train`\n")
    assert unknown_names(page) == ["torch_tanhnet/fast.py", "torch_tanhnet.distributed.end_process"]


def test_the_pages_show_code_to_run():
    assert len([b for b in PYTHON_BLOCKS if b.page.name == "README.md"]) >= 2
    assert any(b.norun is None for b in PYTHON_BLOCKS if b.page.parent.name == "docs")
    assert {tuple(a[:2]) for b in BASH_BLOCKS for a in commands(b)} >= DRY_RUN  # train.py and sweep.py lines
