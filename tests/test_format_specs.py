"""The format registry: the command line, the GUI's dialogs, format detection and the formats
page (docs/formats.md) all name the formats the registry holds, and no other."""

import re
import shutil
from pathlib import Path

import pytest

from deepetpicker.cli import build_parser, formats_epilog
from deepetpicker.errors import DeepETPickerError
from deepetpicker.io import format_specs as S
from deepetpicker.io import formats as F
from deepetpicker.io.dataset import PICK_SUFFIXES
from deepetpicker.io.formats import registry as R
from deepetpicker.io.picks import Picks, write_picks

FORMATS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "formats.md"
TABLE_HEADER = "| format | file | units | origin | class | needs |"
SHAPE = (20, 30, 40)
VOXEL = 7.5


def _subcommand(name):
    parser = build_parser()
    return parser._subparsers._group_actions[0].choices[name]


def _option(parser, flag):
    return next(a for a in parser._actions if flag in a.option_strings)


def test_registry_names_and_derived_tables():
    assert S.format_names() == ("coords", "box", "star", "relion4", "relion5", "tbl",
                                "copick", "ndjson")
    assert F.FORMATS == S.format_names()
    assert set(F.FORMAT_HELP) == set(F.FORMATS) and all(F.FORMAT_HELP.values())
    assert F.NAMED_FORMATS == ("box", "copick", "ndjson")
    assert F.RELION_TOMO_FORMATS == ("relion4", "relion5")
    assert PICK_SUFFIXES == (".coords", ".txt", ".csv")
    assert S.pick_file_suffixes() == (".coords", ".txt", ".csv", ".box", ".star", ".tbl",
                                      ".json", ".ndjson", ".jsonl")
    with pytest.raises(DeepETPickerError, match=r"Unknown pick format 'pdf'; choose one of "
                                                r"coords, box, star, relion4, relion5, tbl, "
                                                r"copick, ndjson\."):
        S.format_spec("pdf")


def test_every_format_has_one_reader_and_one_writer():
    assert sorted(R.READERS) == sorted(F.FORMATS)
    assert sorted(R.WRITERS) == sorted(F.FORMATS)
    assert R.READERS["relion4"] is R.READERS["star"] is R.READERS["relion5"]
    assert len(set(R.WRITERS.values())) == len(F.FORMATS)


def test_cli_choices_and_help_come_from_the_registry():
    names = list(S.format_names())
    convert, predict = _subcommand("convert"), _subcommand("predict")
    assert list(_option(convert, "--to").choices) == names
    assert list(_option(predict, "--format").choices) == names
    assert _option(convert, "--to").help == "output format: " + ", ".join(names) + " (required)"
    assert "needed by relion5 and copick (default" in _option(convert, "--voxel-size").help
    assert "needed by relion5, read or written" in _option(convert, "--shape").help
    assert _option(convert, "--binning").help.startswith("relion4: ")
    assert _option(predict, "--tilt-series-pixel-size").help.startswith("relion4/relion5: ")
    assert "objects of box, copick and ndjson files" in _option(predict, "--class-names").help
    # the format table of convert --help: one row per format, in the registry's order
    epilog = formats_epilog()
    rows = re.findall(r"^  (\w+) ", epilog, re.M)
    assert rows == names
    assert "  box      EMAN2, 0-based voxels, one file per class" in epilog
    assert epilog in convert.epilog


def test_open_dialog_filter_names_every_readable_suffix():
    text = S.picks_file_filter()
    first, rest = text.split(";;")
    assert rest == "All files (*)"
    patterns = re.fullmatch(r"Pick files \((.*)\)", first).group(1).split()
    assert patterns == [f"*{s}" for s in S.pick_file_suffixes()]
    for spec in S.FORMAT_SPECS:
        assert all(f"*{s}" in patterns for s in spec.suffixes), spec.name


def test_gui_dialogs_use_the_registry(qapp, monkeypatch):
    from PyQt5.QtWidgets import QFileDialog

    from gui.picks_model import SAVE_FILTERS
    from gui.tabs import infer_tab, viewer_tab

    assert viewer_tab.PICKS_FILTER == S.picks_file_filter()
    seen = []
    monkeypatch.setattr(QFileDialog, "getOpenFileNames",
                        staticmethod(lambda *args: (seen.append(args[3]), ([], ""))[1]))
    tab = infer_tab.InferTab()
    tab._choose_convert_files()
    assert seen == [S.picks_file_filter()]
    choices = [tab.convert_format.itemData(i) for i in range(tab.convert_format.count())]
    assert choices == list(S.format_names())
    exports = [tab.out_format.itemData(i) for i in range(tab.out_format.count())]
    assert exports == [""] + [n for n in S.format_names() if n != "coords"]
    # Save As: the plain tables under the name chosen, every other format once
    assert [(name, suffix) for _, name, suffix in SAVE_FILTERS] == [
        (None, ".coords"), (None, ".txt"), (None, ".csv"), ("box", ".box"), ("star", ".star"),
        ("relion4", ".star"), ("relion5", ".star"), ("tbl", ".tbl"), ("copick", ".json"),
        ("ndjson", ".ndjson")]
    assert SAVE_FILTERS[5][0] == "RELION 4 tomography particles (*.star)"


def test_save_suffixes_and_the_message_for_an_unknown_one(qapp, tmp_path):
    from gui.picks_model import PicksModel

    assert S.save_format_for_suffix(".STAR") == "star"
    assert S.save_format_for_suffix(".json") == "copick"
    assert S.save_format_for_suffix(".jsonl") is None
    model = PicksModel()
    model.clear("tomo", shape=SHAPE)
    model.add(1, 3, 4, 5)
    with pytest.raises(DeepETPickerError, match=re.escape(
            "unknown suffix '.jsonl'. Use .coords, .txt, .csv, .box, .star, .tbl, .json or "
            ".ndjson.")):
        model.save(tmp_path / "picks.jsonl")
    written = model.save(tmp_path / "picks.tbl")
    assert [p.name for p in written] == ["picks.tbl", "picks.doc"]  # the name given


@pytest.mark.parametrize("spec", S.FORMAT_SPECS, ids=lambda spec: spec.name)
def test_detect_format_for_each_suffix(tmp_path, spec):
    table = Picks([1, 1], [[1, 2, 3], [4, 5, 6]], [0.5, 0.25], "TS_01", VOXEL)  # one file
    written = F.write_format(table, spec.name, tmp_path / "out", shapes=SHAPE)[0]
    assert written.suffix == spec.suffix
    for suffix in spec.suffixes:
        path = tmp_path / f"TS_01{suffix}"
        if spec.keeps_file_name:
            write_picks(path, table)  # written as its suffix says (.csv with a header)
        else:
            shutil.copy(written, path)
        assert F.detect_format(path) == spec.name, suffix
        back = F.read_any(path, shape=SHAPE, voxel_size=VOXEL)
        xyz = sorted(tuple(row) for t in back for row in t.xyz.round(3).tolist())
        assert xyz == [(1, 2, 3), (4, 5, 6)], suffix


def test_detect_format_refuses_other_suffixes_naming_the_known_ones(tmp_path):
    with pytest.raises(DeepETPickerError) as error:
        F.detect_format(tmp_path / "a.pdb")
    message = str(error.value)
    assert "extension '.pdb'" in message
    for suffix in S.pick_file_suffixes():
        assert suffix in message
    assert ".star (RELION 3, RELION 4.0 tomo, RELION 5.0 tomo)" in message


def test_formats_page_table_is_the_registrys():
    text = FORMATS_PAGE.read_text(encoding="utf-8")
    assert text.count(TABLE_HEADER) == 1
    found = re.search(rf"^{re.escape(TABLE_HEADER)}\n(?:\|.*\n)*", text, re.M).group(0)
    assert found == S.format_table_markdown()
    rows = found.splitlines()[2:]
    assert [re.match(r"\| `(\w+)`", row).group(1) for row in rows] == list(S.format_names())
