"""MkDocs hook: the changelog page is CHANGELOG.md from the repository root.

The changelog is kept in one place, CHANGELOG.md (it ships in the sdist and is what GitHub
shows); this hook adds it to the site as ``changelog.md`` without a copy in docs/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

CHANGELOG = Path(__file__).resolve().parents[2] / "CHANGELOG.md"


def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, "changelog.md", abs_src_path=str(CHANGELOG)))
    return files
