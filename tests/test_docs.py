"""The documentation points at things that exist: every relative link in README.md and docs/*.md resolves to a file
of the repository (no anchors), and every ``python -m X`` / ``python PATH.py`` the docs name in code (fenced blocks
or inline code) names a module or script that exists. Static checks only: nothing named is run."""
import glob
import importlib.util
import os
import re

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


def code_spans(text: str) -> list[str]:
    """Fenced code blocks and inline code spans."""
    blocks = [m.group(2) for m in FENCE.finditer(text)]
    rest = FENCE.sub("", text)
    return blocks + [m.group(2) for m in INLINE.finditer(rest)]


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
