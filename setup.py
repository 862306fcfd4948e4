"""Install DeepETPicker: the ``deepetpicker`` library and command, and the desktop application."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"',
                    (HERE / "deepetpicker" / "__init__.py").read_text()).group(1)

setup(
    name="deepetpicker",
    version=VERSION,
    description="Weakly supervised 3D deep-learning particle picking for cryo-electron tomograms",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="GPL-3.0-or-later",
    python_requires=">=3.10",
    packages=find_packages(include=["deepetpicker", "deepetpicker.*", "gui", "gui.*"]),
    include_package_data=True,
    package_data={"gui": ["resources/*"]},
    install_requires=[
        # torch is installed first by scripts/setup.sh (CPU build 2.13.0 when none is present);
        # any recent torch works, so the range admits what a GPU workstation already has.
        "torch>=2.1",
        "numpy>=1.24",
        "scipy>=1.10",
        "mrcfile>=1.4",
        # OME-Zarr tomograms (copick's storage) are read with zarr 2, the format copick writes.
        "zarr>=2.16,<3",
        "scikit-image>=0.21",
        "elasticdeform>=0.5",
        "starfile>=0.5",
        "pandas>=1.5",
        "matplotlib>=3.6",
        "PyQt5>=5.15",
        "pyqtgraph>=0.13",
    ],
    extras_require={
        # ome-zarr writes the OME-Zarr tomograms of the tests as copick does; its releases from
        # 0.12 on need zarr 3.
        # copick projects (`deepetpicker copick import`, `predict --copick`); tested with 1.31.
        "copick": ["copick>=1.0"],
        "test": ["pytest>=7", "pytest-qt>=4.2", "ome-zarr>=0.9,<0.12", "copick>=1.0"],
    },
    entry_points={
        "console_scripts": ["deepetpicker=deepetpicker.cli:main"],
        "gui_scripts": ["deepetpicker-gui=gui.app:main"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: GNU General Public License v3 or later (GPLv3+)",
        "Topic :: Scientific/Engineering :: Bio-Informatics",
        "Environment :: X11 Applications :: Qt",
    ],
)
