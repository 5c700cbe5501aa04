"""The documentation points at things that exist: every relative link in README.md and docs/*.md resolves to a file
of the repository (no anchors), and every ``python -m X`` / ``python PATH.py`` the docs name in code (fenced blocks
or inline code) names a module or script that exists. Static checks only: nothing named is run."""
import ast
import contextlib
import glob
import importlib
import importlib.util
import io
import os
import re
import shlex

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
# Pages other developers own and may not have landed yet: linked from the docs, allowed to be missing meanwhile.
OWNED_ELSEWHERE: set = set()  # pages another change owns may be linked before they land; none now
PROJECT_TOPS = ("experiments", "kernels", "jaxlab", "tools", "tests")

LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~)[^\n]*\n(.*?)^\1[ \t]*$", re.S | re.M)
INLINE = re.compile(r"(`+)(.+?)\1", re.S)
MODULE_CMD = re.compile(r"\bpython3?\s+-m\s+([A-Za-z_][\w.]*)")
SCRIPT_CMD = re.compile(r"\bpython3?\s+((?:[\w.-]+/)*[\w.-]+\.py)\b")


def _rel(path: str) -> str:
    return os.path.relpath(path, ROOT)


def _ids(paths):
    return [_rel(p) for p in paths]


def links(text: str) -> list[str]:
    """Targets of markdown links and images outside code."""
    return LINK.findall(code_free(text))


def code_free(text: str) -> str:
    text = FENCE.sub("", text)
    return INLINE.sub("", text)


def code_spans(text: str, one_line: bool = False) -> list[str]:
    """Fenced code blocks and inline code spans (one_line: an inline span's line breaks as spaces, as rendered)."""
    blocks = [m.group(2) for m in FENCE.finditer(text)]
    rest = FENCE.sub("", text)
    return blocks + [m.group(2).replace("\n", " ") if one_line else m.group(2) for m in INLINE.finditer(rest)]


def module_exists(name: str) -> bool:
    """A project module resolves by path under the repository (NAME.py, NAME/__main__.py or NAME/__init__.py); any
    other name through importlib (stdlib, installed tools such as pytest or pip). An upper-case component is a
    placeholder (``experiments.NAME``): then the package before it must exist."""
    parts = name.split(".")
    for i, part in enumerate(parts):
        if re.fullmatch(r"[A-Z][A-Z0-9_]*", part):
            parts = parts[:i]
            assert parts, f"python -m {name}: a placeholder with no package"
            base = os.path.join(ROOT, *parts)
            return os.path.isfile(os.path.join(base, "__init__.py"))
    if parts[0] in PROJECT_TOPS:
        base = os.path.join(ROOT, *parts)
        return (os.path.isfile(base + ".py") or os.path.isfile(os.path.join(base, "__main__.py"))
                or os.path.isfile(os.path.join(base, "__init__.py")))
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def test_docs_found():
    names = _ids(DOCS)
    assert "README.md" in names
    for page in ("curvature", "optimizers", "sweeps", "checkpoints", "scaling", "experiments", "configs", "data",
                 "testing"):
        assert f"docs/{page}.md" in names, f"docs/{page}.md is missing"


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_relative_links_resolve(doc):
    text = open(doc, encoding="utf-8").read()
    bad = []
    for target in links(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:, ...
            continue
        if "#" in target:
            bad.append(f"{target}: anchors are not allowed (they break silently when a heading changes)")
            continue
        path = os.path.normpath(os.path.join(os.path.dirname(doc), target))
        if not path.startswith(ROOT + os.sep):
            bad.append(f"{target}: outside the repository")
        elif not os.path.exists(path) and _rel(path) not in OWNED_ELSEWHERE:
            bad.append(f"{target}: no such file ({_rel(path)})")
    assert not bad, f"{_rel(doc)}:\n  " + "\n  ".join(bad)


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_commands_name_existing_modules(doc):
    spans = code_spans(open(doc, encoding="utf-8").read())
    bad = sorted({f"python -m {m}" for s in spans for m in MODULE_CMD.findall(s) if not module_exists(m)}
                 | {f"python {p}" for s in spans for p in SCRIPT_CMD.findall(s)
                    if not os.path.isfile(os.path.join(ROOT, p))})
    assert not bad, f"{_rel(doc)} names commands whose module or script does not exist: {bad}"


def test_readme_first_screens():
    """The two commands, the headline figure and the results table open the README (first ~100 lines)."""
    lines = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read().split("\n")
    head = "\n".join(lines[:100])
    assert "pip install -e . && python -m experiments.eos_weight_decay --workdir runs/eos" in head
    assert 'pip install -e ".[test]" && python -m pytest' in head
    assert "](docs/images/eos_sharpness.png)" in head
    assert "| question | what jaxlab measured | command |" in head
    assert len(lines) <= 260, f"README.md has {len(lines)} lines; details belong in docs/"


def test_helpers_on_samples():
    """The parsers themselves: links outside code only, commands inside code only, placeholders, stdlib."""
    text = "see [a](docs/a.md) and `[b](x.md)`\n```bash\npython -m pytest -q\n```\ntext python -m nothere\n`python -m pip`"
    assert links(text) == ["docs/a.md"]
    assert [m for s in code_spans(text) for m in MODULE_CMD.findall(s)] == ["pytest", "pip"]
    assert module_exists("experiments.NAME") and module_exists("json") and module_exists("jaxlab.bench.sweep")
    assert not module_exists("experiments.no_such_experiment") and not module_exists("no_such_module_xyz")


# ------------------------------------------------------------------------ documented commands parse

SOURCE_TOPS = ("jaxlab", "kernels", "experiments")  # every docstring of their modules (jaxlab/kernels is a link)
COMMAND = re.compile(r"\bpython3?\s+-m\s+([A-Za-z_][\w.]*)((?:[^\n`\\]|\\\n)*)")
OPTIONAL = re.compile(r"\s\[--[^\]]*\]")  # "[--interval N]": an optional part, left out
SHELL_OPS = {"&&", "||", "|", ";", ">", "2>", "<"}


def docstrings(path: str) -> list[str]:
    """Every docstring of a Python file: the module's, its classes' and functions'."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    nodes = [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.FunctionDef))]
    return [d for d in (ast.get_docstring(n) for n in nodes) if d]


def python_sources() -> list[str]:
    out = []
    for top in SOURCE_TOPS:
        for d, dirs, files in os.walk(os.path.join(ROOT, top)):  # symlinked folders are not followed
            dirs[:] = sorted(x for x in dirs if x != "__pycache__")
            out += [os.path.join(d, f) for f in sorted(files) if f.endswith(".py")]
    return out


def commands(text: str) -> list[tuple[str, list[str], str]]:
    """[(module, argv, error)] of the ``python -m MODULE ...`` commands in ``text`` (to the end of the line or of
    the code span or of the quoted string it sits in, continuation lines joined, comments and what follows a shell
    operator dropped). error: what a ``# error: ...`` comment says the command prints ("" for none)."""
    out = []
    for module, rest in COMMAND.findall(text):
        rest = OPTIONAL.sub("", rest.replace("\\\n", " "))
        error = rest.split("# error:", 1)[1].strip() if "# error:" in rest else ""
        try:
            words = shlex.split(rest, comments=True)
        except ValueError:  # the command ends inside a quoted string (an ssh command, a Python literal)
            words = shlex.split(rest[:max(rest.rfind("'"), rest.rfind('"'))], comments=True)
        cut = next((i for i, w in enumerate(words) if w in SHELL_OPS), len(words))
        out.append((module, words[:cut], error))
    return out


def documented_commands() -> list[tuple[str, str, list[str], str]]:
    """[(where, module, argv, error)] for every project module run in README.md, docs/*.md and docstrings."""
    found = [(_rel(doc), *c) for doc in DOCS for span in code_spans(open(doc, encoding="utf-8").read(), True)
             for c in commands(span)]
    found += [(_rel(src), *c) for src in python_sources() for doc in docstrings(src) for c in commands(doc)]
    return [c for c in found if c[1].split(".")[0] in SOURCE_TOPS
            and not any(re.fullmatch(r"[A-Z][A-Z0-9_]*", p) for p in c[1].split("."))]


COMMANDS = documented_commands()


def parse_error(module_name: str, argv: list[str]) -> str | None:
    """What the module's own flag parser says of ``argv``, without running the module: None when it parses.
    argparse modules expose ``parser()``; experiments run by ``jaxlab.cli`` parse (and validate) through
    ``cli.parse_command``; a module without flags takes no arguments."""
    from jaxlab import cli
    from jaxlab.config import ConfigError

    module = importlib.import_module(module_name)
    if hasattr(module, "__path__"):  # a package run by its __main__
        module = importlib.import_module(module_name + ".__main__")
    if hasattr(module, "parser"):
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                module.parser().parse_args(argv)
        except SystemExit:
            return err.getvalue().strip().splitlines()[-1]
        return None
    if module_name.startswith("experiments.") and "cli.main(" in open(module.__file__, encoding="utf-8").read():
        try:
            cli.parse_command(module.__file__, ["python -m " + module_name, *argv])
        except ConfigError as e:
            return str(e)
        return None
    return f"takes no flags, given {argv}" if argv else None


LOADING_CONFIGS = pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")  # ml_collections' loader


@LOADING_CONFIGS
@pytest.mark.parametrize("where,module,argv,expected", COMMANDS,
                         ids=[f"{w}:{' '.join([m] + a)}"[:120] for w, m, a, _ in COMMANDS])
def test_documented_command_parses(where, module, argv, expected, monkeypatch):
    """Every ``python -m ...`` that README.md, docs/ and the docstrings of jaxlab, kernels and experiments show
    parses with that module's own flag parser (relative paths from the repository root, as the docs run them); one
    documented with ``# error: ...`` fails with that message ("..." standing for any text)."""
    monkeypatch.chdir(ROOT)
    error = parse_error(module, argv)
    where = f"{where}: python -m {module} {shlex.join(argv)}\n  {error}"
    if not expected:
        assert error is None, where
    else:
        assert error is not None and re.fullmatch(".*".join(map(re.escape, expected.split("..."))), error), where


@LOADING_CONFIGS
def test_commands_are_found():
    """The extraction itself: continuation lines, comments, optional parts, code spans, every kind of source."""
    text = ("python -m kernels.bench --shapes 1,2,3,4 \\\n    --fla on   # a comment\n"
            "run ``python -m experiments.merge --workdir DIR --window 8 [--end STEP]`` after it\n"
            "python -m experiments.report --workdir runs/eos && ls\n")
    assert commands(text) == [("kernels.bench", ["--shapes", "1,2,3,4", "--fla", "on"], ""),
                              ("experiments.merge", ["--workdir", "DIR", "--window", "8"], ""),
                              ("experiments.report", ["--workdir", "runs/eos"], "")]
    assert commands("python -m experiments.x --a=1  # error: no ... here") == [("experiments.x", ["--a=1"], "no ... here")]
    wheres = {w.split("/")[0] for w, _, _, _ in COMMANDS}
    assert {"README.md", "docs", "jaxlab", "kernels", "experiments"} <= wheres, wheres
    assert "argument --fla: expected one argument" in parse_error("kernels.bench", ["--fla"])
    assert "conflicts with config.sweep.axes" in parse_error("experiments.eos_weight_decay", ["--config.optim.lr=0.05"])
