"""Every relative link in the manual resolves: README.md, CHANGELOG.md, docs/*.md and every folder's
README.md link only to files that exist and, for `page.md#anchor`, to a heading that page has
(GitHub's anchors: lowercase, punctuation dropped, spaces as hyphens, `-1`, `-2` for repeats).

Pure and fast: reads the Markdown files, nothing else. A moved or renamed page fails here with
each broken link named, so `docs/README.md` (the index) and the pages linking each other stay whole."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIPPED_DIRS = {".git", ".venv", "node_modules", "test-artifacts", "__pycache__", ".ruff_cache", ".pytest_cache"}

# Pages that parallel work adds (issue 26): linked from the index already. A link to one counts while
# the page is absent; once it exists it is checked like any other (anchors included).

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"(?<!!)\[(?:[^\]\n]|\][^(])*?\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)


def manual_pages() -> list[Path]:
    """README.md, CHANGELOG.md, docs/*.md and every README.md below the root (virtualenvs and caches left out)."""
    pages = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("."))
        if "README.md" in files and Path(folder) != ROOT:
            pages.append(Path(folder) / "README.md")
    return [page for page in pages if page.exists()]


def without_fences(text: str) -> str:
    """The text with fenced blocks blanked: `# ...` lines there are shell comments, not headings."""
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def without_code(text: str) -> str:
    """The text with fenced blocks and inline code blanked: links there are examples."""
    return INLINE_CODE.sub("``", without_fences(text))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: rendered text (link targets and backticks dropped), lowercase,
    characters other than letters, digits, `_`, `-` and spaces removed, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for match in HEADING.finditer(without_fences(page.read_text())):
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(page: Path) -> list[str]:
    problems = []
    for target in LINK.findall(without_code(page.read_text())):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        where = f"{page.relative_to(ROOT)}: ({target})"
        if not destination.exists():
            problems.append(f"{where} -> no such file")
            continue
        if anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            problems.append(f"{where} -> no heading with anchor #{anchor} in {destination.relative_to(ROOT)}")
    return problems


def test_slugs_follow_github():
    assert slug("prefect.yaml and `prefect deploy --all`") == "prefectyaml-and-prefect-deploy---all"
    assert slug("Trust the API's CA") == "trust-the-apis-ca"
    assert slug("Scale Prefect: split server and HA") == "scale-prefect-split-server-and-ha"
    assert slug("Crash safety, in short") == "crash-safety-in-short"
    assert slug("The Prefect server `up` runs") == "the-prefect-server-up-runs"


def test_broken_links_are_found(tmp_path, monkeypatch):
    """The check itself fails on a missing file and on a missing anchor (a check that cannot fail is no check)."""
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "a.md").write_text("# Title\n\n## Some part\n\n[ok](b.md#other) [bad](c.md) [gone](b.md#nope)\n"
                                   "```\n[in code](x.md)\n```\n[self](#some-part) [self bad](#none)\n")
    (tmp_path / "b.md").write_text("# Other\n")
    problems = broken_links(tmp_path / "a.md")
    assert [p.split(" -> ")[0] for p in problems] == ["a.md: (c.md)", "a.md: (b.md#nope)", "a.md: (#none)"]


def test_the_index_and_every_page_link_to_existing_pages_and_headings():
    pages = manual_pages()
    assert ROOT / "docs" / "README.md" in pages, "docs/README.md, the index of the manual, is missing"
    problems = [problem for page in pages for problem in broken_links(page)]
    assert problems == [], "broken links:\n  " + "\n  ".join(problems)


def test_the_index_lists_every_docs_page():
    index = (ROOT / "docs" / "README.md").read_text()
    linked = {target.partition("#")[0] for target in LINK.findall(without_code(index))}
    unlisted = [page.name for page in sorted((ROOT / "docs").glob("*.md"))
                if page.name != "README.md" and page.name not in linked]
    assert unlisted == [], f"add these pages to docs/README.md (the index), with what each answers: {unlisted}"
