"""Where the project's own files are, for modules at any depth under lib/."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # pipelines/
PROJECT_DIR = PACKAGE_DIR.parent                   # the repository
CONFIG_DIR = PACKAGE_DIR / "config"
