"""Install DeepETPicker; the metadata lives in pyproject.toml (this file is kept for old tools)."""

from setuptools import setup

setup()
