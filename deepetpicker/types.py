"""Type names shared by the package's modules."""

from __future__ import annotations

import os
from typing import Union

#: A file or folder given as text or as a path object.
PathLike = Union[str, os.PathLike]
