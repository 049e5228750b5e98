"""The documentation: README.md and docs/*.md.  docs/conformance.md is what
the generator makes of the suite, and every relative link resolves, to a
file and, where it names one, to a heading of that file."""

import re
from pathlib import Path

import pytest

from pytest_ovnlb.reporting import statements

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", *DOCS]
# [text](target): the target up to its closing parenthesis, no spaces
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCED = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
INLINE = re.compile(r"`[^`\n]*`")


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings, as GitHub makes them: lower case,
    punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.*)$", FENCED.sub("", page.read_text()), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def links(page: Path) -> list[str]:
    """The relative links of a page, outside code."""
    return [t for t in LINK.findall(INLINE.sub("", FENCED.sub("", page.read_text())))
            if not re.match(r"[a-z]+:", t)]


def test_conformance_statements_are_generated():
    expected = statements.markdown(str(ROOT / "conformance"))
    found = (ROOT / "docs" / "conformance.md").read_text()
    assert found == expected, (
        "docs/conformance.md is not what the suite says; regenerate it: "
        f".venv/bin/{statements.COMMAND}")


def test_every_conformance_file_has_a_statement():
    text = (ROOT / "docs" / "conformance.md").read_text()
    for path in sorted((ROOT / "conformance").glob("test_*.py")):
        assert f"## {path.name}\n" in text, path.name


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        where = (page.parent / path).resolve() if path else page
        if not where.exists():
            broken.append(f"{target}: no {where.relative_to(ROOT)}")
        elif anchor and where.suffix == ".md" and anchor not in anchors(where):
            broken.append(f"{target}: no heading #{anchor} in {where.relative_to(ROOT)}")
    assert broken == [], f"{page.relative_to(ROOT)}: broken links"


def test_every_doc_is_linked_from_the_readme():
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in links(ROOT / "README.md")}
    assert [d.name for d in DOCS if d not in linked] == []


def test_the_anchors_are_githubs():
    page = ROOT / "README.md"
    assert {"the-reference-lab-by-hand-ovnlb-lab", "quick-start",
            "an-example-test"} <= anchors(page)


def test_no_test_module_name_is_in_both_test_folders():
    """The conformance suite is collected inside this process by some of
    these tests: a module of the same name here, imported first, would
    make that collection fail ("import file mismatch")."""
    ours = {p.name for p in (ROOT / "tests").glob("test_*.py")}
    suite = {p.name for p in (ROOT / "conformance").glob("test_*.py")}
    assert not ours & suite
