#!/usr/bin/env python
"""Command-line entry point of the drf-totp example project."""

import os
import sys
from pathlib import Path


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    try:
        import drf_totp  # noqa: F401
    except ImportError:
        # Not installed (no `make demo`): use the checkout this project lives in.
        sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
