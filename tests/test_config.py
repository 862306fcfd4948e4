"""Config files: the original's format both ways, literal-only parsing, validation messages."""

import json
import warnings
from pathlib import Path

import pytest

from deepetpicker.config import (
    DEFAULT_AUGMENT,
    LIGHT_F_MAPS,
    ConfigWarning,
    PreprocessConfig,
    TrainConfig,
    canonical_label_type,
    format_config,
    format_ids,
    load_config,
    load_preprocess_config,
    load_train_config,
    parse_ids,
    parse_int_list,
    save_config,
)
from deepetpicker.errors import DeepETPickerError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SAMPLES = ["SHREC_2021_preprocess.py", "SHREC_2021_train.py", "EMPIAR_10045_preprocess.py",
           "EMPIAR_10045_train.py"]


def original_text(var: str, data: dict) -> str:
    """A config file as the original program writes it."""
    return var + "=" + json.dumps(data, separators=(",\n" + " " * len(var + "={"), ": "))


def original_read(text: str, var: str) -> dict:
    """How the original program reads a config file."""
    return json.loads(text.lstrip(var + "="))


def pre_dict(base="/data/ds", **changes) -> dict:
    data = {"dset_name": "ds_preprocess", "base_path": base, "coord_path": base + "/raw",
            "coord_format": ".coords", "tomo_path": base + "/raw", "tomo_format": ".mrc",
            "num_cls": 3, "label_type": "gaussian", "label_diameter": 9, "ocp_type": "sphere",
            "ocp_diameter": "11,13,17", "norm_type": "standardization"}
    data.update(changes)
    return data


def train_dict(base="/data/ds", **changes) -> dict:
    data = {"dset_name": "ds_train", "base_path": base, "coord_path": base + "/coords",
            "coord_format": ".coords", "tomo_path": base + "/data_std", "tomo_format": ".mrc",
            "num_cls": 3, "label_name": "gaussian9", "label_path": base + "/gaussian9",
            "label_type": "gaussian", "label_diameter": 9, "ocp_type": "sphere",
            "ocp_diameter": "11,13,17", "ocp_name": "data_ocp", "ocp_path": base + "/data_ocp",
            "norm_type": "standardization", "model_name": "ResUNet", "train_set_ids": "0,2-4",
            "val_set_ids": "5", "batch_size": 8, "patch_size": 64, "padding_size": 12,
            "lr": 0.0005, "max_epochs": 60, "seg_thresh": 0.5, "gpu_ids": "0,1"}
    data.update(changes)
    return data


def write(tmp_path, text, name="cfg.py") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SAMPLES)
def test_sample_configs_load_and_round_trip_byte_for_byte(name, tmp_path):
    path = CONFIGS / name
    cfg = load_config(path)
    assert isinstance(cfg, TrainConfig) == name.endswith("_train.py")
    text = path.read_text()
    assert format_config(cfg) == text
    out = save_config(cfg, tmp_path / name)
    assert out.read_text() == text
    again = load_config(out)
    assert again == cfg
    var = "train_configs" if name.endswith("_train.py") else "pre_config"
    raw = original_read(text, var)
    assert isinstance(raw["ocp_diameter"], str)
    if var == "train_configs":
        assert isinstance(raw["train_set_ids"], str) and isinstance(raw["gpu_ids"], str)


def test_sample_values():
    shrec = load_preprocess_config(CONFIGS / "SHREC_2021_preprocess.py")
    assert shrec.num_cls == 14 and shrec.label_type == "gaussian" and shrec.label_diameter == 9
    assert shrec.ocp_diameter == [7, 7, 7, 7, 7, 9, 9, 9, 11, 11, 13, 13, 13, 17]
    empiar = load_preprocess_config(CONFIGS / "EMPIAR_10045_preprocess.py")
    assert (empiar.num_cls, empiar.label_diameter, empiar.ocp_diameter) == (1, 11, [23])
    train = load_train_config(CONFIGS / "SHREC_2021_train.py")
    assert train.train_set_ids == list(range(8)) and train.val_set_ids == [8]
    assert train.label_dir == Path("/path/to/SampleDatasets/SHREC_2021/gaussian9")
    assert train.data_dir == Path("/path/to/SampleDatasets/SHREC_2021/data_std")
    assert train.run_dir == Path("/path/to/SampleDatasets/SHREC_2021/runs/SHREC_2021_train")
    back = train.to_preprocess()
    assert type(back) is PreprocessConfig and back.ocp_diameter == shrec.ocp_diameter
    assert back.tomo_path == "/path/to/SampleDatasets/SHREC_2021/data_std"


def test_original_train_file_is_parsed_and_rewritten_identically(tmp_path):
    text = original_text("train_configs", train_dict())
    path = write(tmp_path, text)
    cfg = load_train_config(path)
    assert cfg.train_set_ids == [0, 2, 3, 4] and cfg.val_set_ids == [5]
    assert cfg.gpu_ids == [0, 1] and cfg.ocp_diameter == [11, 13, 17]
    assert cfg.lr == 0.0005 and cfg.patch_size == 64 and cfg.stride == 40
    assert cfg.f_maps == [24, 48, 72, 108] and cfg.device == "auto" and cfg.loss == "dice"
    assert format_config(cfg) == text
    assert save_config(cfg, tmp_path / "out.py").read_text() == text


def test_train_file_of_the_original_command_line_keeps_its_key_order(tmp_path):
    # the original's command-line generator updates the preprocessing dict in place and
    # appends the training keys, so its key order differs from the GUI's
    data = pre_dict()
    data.update(dset_name="cli_train", coord_path="/data/ds/coords", tomo_path="/data/ds/data_std")
    data.update(label_name="gaussian9", label_path="/data/ds/gaussian9", ocp_name="data_ocp",
                ocp_path="/data/ds/data_ocp", model_name="ResUNet", train_set_ids="0",
                val_set_ids="0", batch_size=8, patch_size=72, padding_size=12, lr=0.001,
                max_epochs=60, seg_thresh=0.5, gpu_ids="0")
    text = original_text("train_configs", data)
    cfg = load_train_config(write(tmp_path, text))
    assert cfg.dset_name == "cli_train" and cfg.train_set_ids == [0] and cfg.gpu_ids == [0]
    assert format_config(cfg) == text


def test_python_literal_file_with_comments_and_python_values(tmp_path):
    text = """# written by hand
train_configs = {
    'dset_name': 'hand',   # a comment
    'base_path': '/data/hand',
    'num_cls': 2,
    'label_type': 'TBall',
    'label_diameter': 7,
    'ocp_diameter': [11, 13],
    'train_set_ids': [0, 1],
    'val_set_ids': 2,
    'coord_conv': True,
    't_dist': None,
    'f_maps': (8, 16, 24, 36),
    'lr': 5e-4,
    'augment': {'elastic': 0.0,},
}
"""
    cfg = load_train_config(write(tmp_path, text))
    assert cfg.label_type == "gaussian" and cfg.label_name == "gaussian7"
    assert cfg.label_path == "/data/hand/gaussian7" and cfg.tomo_path == "/data/hand/data_std"
    assert cfg.ocp_path == "/data/hand/data_ocp" and cfg.coord_path == "/data/hand/coords"
    assert cfg.ocp_diameter == [11, 13] and cfg.train_set_ids == [0, 1] and cfg.val_set_ids == [2]
    assert cfg.f_maps == LIGHT_F_MAPS and cfg.t_dist is None
    assert cfg.augment == {**DEFAULT_AUGMENT, "elastic": 0.0}
    out = save_config(cfg, tmp_path / "out.py")
    written = original_read(out.read_text(), "train_configs")
    assert written["ocp_diameter"] == "11,13" and written["train_set_ids"] == "0,1"
    assert written["val_set_ids"] == "2" and written["label_type"] == "gaussian"
    assert written["f_maps"] == [8, 16, 24, 36] and written["t_dist"] is None
    assert load_train_config(out) == cfg


def test_json_words_are_accepted_in_a_file_with_comments(tmp_path):
    text = original_text("train_configs", train_dict(coord_conv=False, t_dist=None))
    text = text.replace('"coord_conv": false,', '"coord_conv": false,  # off for a test')
    cfg = load_train_config(write(tmp_path, text))
    assert cfg.coord_conv is False and cfg.t_dist is None


def test_changed_values_are_written_in_the_original_string_form(tmp_path):
    cfg = load_train_config(write(tmp_path, original_text("train_configs", train_dict())))
    cfg.train_set_ids = [0, 1, 2, 3, 9]
    cfg.gpu_ids = [2]
    written = original_read(format_config(cfg), "train_configs")
    assert written["train_set_ids"] == "0-3,9" and written["gpu_ids"] == "2"
    assert written["val_set_ids"] == "5"


# ---------------------------------------------------------------------------------------------
# Hostile files
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("template, what", [
    ("pre_config=__import__('os').system('touch {marker}')", "the value"),
    ('pre_config={{"dset_name": __import__("os").system("touch {marker}")}}', "the call"),
    ('import os\nos.system("touch {marker}")\npre_config={{"dset_name": "x"}}', "the statement"),
    ('pre_config={{"dset_name": "x"}}\nopen("{marker}", "w")', "the statement"),
    ('pre_config={{"dset_name": (lambda: open("{marker}", "w"))()}}', "the call"),
    ('pre_config={{"base_path": os.environ}}', "the attribute"),
    ('pre_config={{"base_path": HOME}}', "the name"),
    ('pre_config={{"num_cls": 2 ** 1000}}', "the expression"),
])
def test_hostile_files_are_refused_without_running_anything(tmp_path, template, what):
    marker = tmp_path / "ran"
    path = write(tmp_path, template.format(marker=marker))
    with pytest.raises(DeepETPickerError) as err:
        load_config(path)
    msg = str(err.value)
    assert str(path) in msg and what in msg and "nothing in the file was run" in msg
    assert "line " in msg
    assert not marker.exists()


def test_not_a_config_file(tmp_path):
    with pytest.raises(DeepETPickerError, match="not found"):
        load_config(tmp_path / "missing.py")
    with pytest.raises(DeepETPickerError, match="no `pre_config=` or `train_configs=`"):
        load_config(write(tmp_path, '"""only a docstring"""\n'))
    with pytest.raises(DeepETPickerError, match="the statement `settings = "):
        load_config(write(tmp_path, "settings = {'a': 1}\n"))
    with pytest.raises(DeepETPickerError, match=r"line 2: cannot read the settings"):
        load_config(write(tmp_path, 'pre_config={"a": 1,\n "b" 2}'))
    with pytest.raises(DeepETPickerError, match="not a text file"):
        path = tmp_path / "binary.py"
        path.write_bytes(b"pre_config={\xff\xfe}")
        load_config(path)


def test_kind_of_config_is_checked(tmp_path):
    with pytest.raises(DeepETPickerError, match="is a training config"):
        load_preprocess_config(CONFIGS / "SHREC_2021_train.py")
    with pytest.raises(DeepETPickerError, match="deepetpicker train-config"):
        load_train_config(CONFIGS / "SHREC_2021_preprocess.py")


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------
BAD_TRAIN_VALUES = [
    ("patch_size", 70, ["multiple of 8"]),
    ("patch_size", 8, ["at least 16"]),
    ("padding_size", 30, ["stride of 4", "padding_size <= 28"]),
    ("ocp_diameter", "7,9", ["gives 2 diameters but num_cls is 3", "one diameter per class",
                             '"7,9,9"']),
    ("ocp_diameter", "7,x,9", ["'x' is not a whole number"]),
    ("label_type", "blob", ["'gaussian', 'sphere', 'cubic'"]),
    ("norm_type", "whiten", ["'standardization', 'normalization'"]),
    ("loss", "l1", ["'dice', 'mse', 'focal', 'iou'"]),
    ("label_diameter", 2, ["at least 3"]),
    ("lr", 0, ["must be > 0"]),
    ("lr", -0.001, ["must be > 0"]),
    ("train_set_ids", "", ["no training tomograms"]),
    ("train_set_ids", "3-1", ["runs backwards", "'1-3'"]),
    ("val_set_ids", "a,b", ["'a' is neither an id nor a range"]),
    ("num_cls", "3", ["expected a whole number"]),
    ("batch_size", 2.5, ["expected a whole number"]),
    ("seg_thresh", 1.5, ["must be > 0 and < 1"]),
    ("device", "gpu", ["'cuda:N'"]),
    ("f_maps", [8, 16], ["4 positive channel counts"]),
    ("augment", {"elastic": 2}, ["probability between 0 and 1"]),
    ("tomo_format", ".tif", [".mrc, .rec, .map"]),
    ("gpu_ids", "0;1", ["'0;1' is not a whole number"]),
    ("dset_name", "a/b", ["may not contain '/'"]),
    ("coord_conv", "yes", ["expected true or false"]),
    ("ema_decay", 1.5, ["must be >= 0 and < 1", "0 turns it off"]),
    ("ema_decay", 1, ["must be >= 0 and < 1"]),
    ("ema_decay", -0.1, ["must be >= 0 and < 1"]),
    ("ema_decay", "x", ["expected a number", "e.g. 0.999"]),
    ("class_loss_weight", -1, ["must be >= 0", "0 turns it off"]),
    ("class_loss_weight", "high", ["expected a number", "e.g. 1.0"]),
]


@pytest.mark.parametrize("key, value, fragments", BAD_TRAIN_VALUES,
                         ids=[f"{k}={v!r}" for k, v, _ in BAD_TRAIN_VALUES])
def test_each_bad_value_names_file_key_value_and_fix(tmp_path, key, value, fragments):
    path = write(tmp_path, original_text("train_configs", train_dict(**{key: value})))
    with pytest.raises(DeepETPickerError) as err:
        load_config(path)
    msg = str(err.value)
    assert str(path) in msg
    assert f"key '{key}" in msg
    shown = value["elastic"] if key == "augment" else value
    assert f"= {shown!r}" in msg
    for fragment in fragments:
        assert fragment in msg, msg


def test_ema_decay_is_read_and_written_back_only_when_given(tmp_path):
    path = write(tmp_path, original_text("train_configs", train_dict(ema_decay=0.999)))
    cfg = load_train_config(path)
    assert cfg.ema_decay == 0.999 and cfg.to_dict()["ema_decay"] == 0.999
    plain = load_train_config(write(tmp_path, original_text("train_configs", train_dict()),
                                    name="plain.py"))
    assert plain.ema_decay == TrainConfig.ema_decay and "ema_decay" not in plain.to_dict()


def test_missing_keys_are_named(tmp_path):
    data = pre_dict()
    del data["num_cls"], data["ocp_diameter"]
    path = write(tmp_path, original_text("pre_config", data))
    with pytest.raises(DeepETPickerError) as err:
        load_config(path)
    msg = str(err.value)
    assert str(path) in msg and "missing keys 'num_cls', 'ocp_diameter'" in msg


def test_several_problems_are_reported_together(tmp_path):
    path = write(tmp_path, original_text("train_configs", train_dict(patch_size=60, lr=0)))
    with pytest.raises(DeepETPickerError) as err:
        load_config(path)
    msg = str(err.value)
    assert f"{path} has 2 problems" in msg and "'patch_size' = 60" in msg and "'lr' = 0" in msg


def test_shared_train_and_val_ids_are_fine(tmp_path):
    cfg = load_config(write(tmp_path, original_text(
        "train_configs", train_dict(train_set_ids="0-3", val_set_ids="2"))))
    assert cfg.train_set_ids == [0, 1, 2, 3] and cfg.val_set_ids == [2]


def test_check_paths(tmp_path):
    base = tmp_path / "ds"
    cfg = load_train_config(write(tmp_path, original_text("train_configs",
                                                          train_dict(base=str(base)))))
    base.mkdir()
    (base / "coords").mkdir()
    with pytest.raises(DeepETPickerError) as err:
        cfg.validate(check_paths=True)
    msg = str(err.value)
    for key in ("tomo_path", "label_path", "ocp_path"):
        assert f"key '{key}'" in msg
    assert "coord_path" not in msg and "deepetpicker preprocess" in msg
    for name in ("data_std", "gaussian9", "data_ocp"):
        (base / name).mkdir()
    assert cfg.validate(check_paths=True) is cfg

    pre_path = write(tmp_path, original_text("pre_config", pre_dict(base=str(base))), "pre.py")
    with pytest.raises(DeepETPickerError, match=r"key 'coord_path' = .*does not exist"):
        load_config(pre_path, check_paths=True)
    (base / "raw").mkdir()
    assert load_config(pre_path, check_paths=True).num_cls == 3


def test_invalid_config_is_not_saved_over_a_good_file(tmp_path):
    target = CONFIGS / "EMPIAR_10045_train.py"
    out = tmp_path / "train.py"
    out.write_text(target.read_text())
    cfg = load_train_config(out)
    cfg.patch_size = 70
    with pytest.raises(DeepETPickerError, match="multiple of 8"):
        save_config(cfg, out)
    assert out.read_text() == target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["train.py"]


# ---------------------------------------------------------------------------------------------
# Unknown and repeated keys
# ---------------------------------------------------------------------------------------------
def test_unknown_keys_warn_and_are_written_back(tmp_path):
    path = write(tmp_path, original_text("pre_config", pre_dict(my_note="keep me", bin=4)))
    with pytest.warns(ConfigWarning) as record:
        cfg = load_preprocess_config(path)
    messages = [str(w.message) for w in record]
    assert any("'my_note'" in m and str(path) in m for m in messages)
    assert any("'bin'" in m for m in messages)
    assert cfg.extra == {"my_note": "keep me", "bin": 4}
    assert format_config(cfg) == path.read_text()


def test_repeated_key_warns_and_last_value_wins(tmp_path):
    text = original_text("pre_config", pre_dict()).replace('"num_cls": 3',
                                                           '"num_cls": 2,\n "num_cls": 3')
    with pytest.warns(ConfigWarning, match="'num_cls' appears more than once"):
        cfg = load_config(write(tmp_path, text))
    assert cfg.num_cls == 3


def test_known_files_load_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = {name: load_config(CONFIGS / name) for name in SAMPLES}
    kinds = {name: (type(cfg).__name__, cfg.num_cls, list(cfg.ocp_diameter))
             for name, cfg in loaded.items()}
    shrec = [7, 7, 7, 7, 7, 9, 9, 9, 11, 11, 13, 13, 13, 17]
    assert kinds == {"SHREC_2021_preprocess.py": ("PreprocessConfig", 14, shrec),
                     "SHREC_2021_train.py": ("TrainConfig", 14, shrec),
                     "EMPIAR_10045_preprocess.py": ("PreprocessConfig", 1, [23]),
                     "EMPIAR_10045_train.py": ("TrainConfig", 1, [23])}
    for name, cfg in loaded.items():            # written back, each is the file it came from
        assert format_config(cfg) == (CONFIGS / name).read_text(), name


# ---------------------------------------------------------------------------------------------
# Building configs in code
# ---------------------------------------------------------------------------------------------
def test_from_preprocess_derives_paths_like_the_original_gui():
    pre = PreprocessConfig.from_dict(pre_dict(norm_type="MinMax", label_type="Ball"))
    assert pre.norm_type == "normalization" and pre.label_type == "sphere"
    assert pre.data_dir == Path("/data/ds/data_norm") and pre.label_dir == Path("/data/ds/sphere9")
    assert pre.coords_dir == Path("/data/ds/coords") and pre.ocp_dir == Path("/data/ds/data_ocp")
    assert pre.configs_dir == Path("/data/ds/configs")
    cfg = TrainConfig.from_preprocess(pre, [0, 1, 2, 5], "6", gpu_ids="0,1",
                                      f_maps=LIGHT_F_MAPS, patch_size=48, padding_size=8)
    assert cfg.dset_name == "ds_train" and cfg.tomo_path == "/data/ds/data_norm"
    assert cfg.coord_path == "/data/ds/coords" and cfg.label_path == "/data/ds/sphere9"
    assert cfg.label_name == "sphere9" and cfg.ocp_path == "/data/ds/data_ocp"
    assert cfg.run_dir == Path("/data/ds/runs/ds_train")
    text = format_config(cfg)
    written = original_read(text, "train_configs")
    assert list(written)[:26] == ["dset_name", "base_path", "coord_path", "coord_format",
                                  "tomo_path", "tomo_format", "num_cls", "label_name",
                                  "label_path", "label_type", "label_diameter", "ocp_type",
                                  "ocp_diameter", "ocp_name", "ocp_path", "norm_type",
                                  "model_name", "train_set_ids", "val_set_ids", "batch_size",
                                  "patch_size", "padding_size", "lr", "max_epochs",
                                  "seg_thresh", "gpu_ids"]
    assert written["train_set_ids"] == "0-2,5" and written["gpu_ids"] == "0,1"
    assert written["ocp_diameter"] == "11,13,17" and written["f_maps"] == LIGHT_F_MAPS
    assert "device" not in written and "augment" not in written  # defaults stay out
    with pytest.raises(DeepETPickerError, match="unknown training setting 'epochs'"):
        TrainConfig.from_preprocess(pre, "0", "0", epochs=3)


def test_label_type_aliases_and_t_dist():
    for alias, canon in [("TBall", "gaussian"), ("BALL", "sphere"), ("Cube", "cubic"),
                         ("cubic", "cubic")]:
        assert PreprocessConfig.from_dict(pre_dict(label_type=alias)).label_type == canon
    assert canonical_label_type(" TBall ") == "gaussian"
    with pytest.raises(DeepETPickerError, match="'blob' is not known"):
        canonical_label_type("blob")
    pre = PreprocessConfig.from_dict(pre_dict())
    assert TrainConfig.from_preprocess(pre, "0", "0").t_dist is None
    assert TrainConfig.from_preprocess(pre, "0", "0", t_dist=3).t_dist == 3.0


# ---------------------------------------------------------------------------------------------
# Id and number lists
# ---------------------------------------------------------------------------------------------
def test_parse_ids():
    assert parse_ids("0-7") == [0, 1, 2, 3, 4, 5, 6, 7]
    assert parse_ids("0,2,5") == [0, 2, 5]
    assert parse_ids(" 0-3, 7 ") == [0, 1, 2, 3, 7]
    assert parse_ids("3,1-2,3") == [3, 1, 2]
    assert parse_ids(4) == [4] and parse_ids([1, "3-4"]) == [1, 3, 4] and parse_ids("") == []
    for bad, fragment in [("1-", "neither an id nor a range"), ("0,,1", "'' is neither"),
                          ("5-2", "runs backwards"), ("-1", "neither an id"),
                          (1.5, "a float is not an id list"), ([True], "True is not an id")]:
        with pytest.raises(DeepETPickerError, match="key 'train_set_ids'") as err:
            parse_ids(bad, key="train_set_ids", source="f.py")
        assert fragment in str(err.value) and str(err.value).startswith("f.py: ")


def test_parse_int_list_and_format_ids():
    assert parse_int_list("7,7,9") == [7, 7, 9]
    assert parse_int_list("7, 9 11") == [7, 9, 11]
    assert parse_int_list(23) == [23] and parse_int_list([1, 2]) == [1, 2]
    with pytest.raises(DeepETPickerError, match="'7.5' is not a whole number"):
        parse_int_list("7.5,9", key="ocp_diameter")
    assert format_ids([0, 1, 2, 3, 9]) == "0-3,9"
    assert format_ids([0, 1, 5]) == "0,1,5"
    assert format_ids([]) == ""


# ---------------------------------------------------------------------------------------------
# Typed values from construction on
# ---------------------------------------------------------------------------------------------
def test_a_config_holds_typed_values_once_made_and_validate_changes_nothing():
    cfg = TrainConfig.from_dict(train_dict(label_type="TBall", label_diameter="9", lr=1,
                                           norm_type="z-score", device=" CPU ", loss="DICE",
                                           augment={"elastic": 0.0}))
    assert cfg.ocp_diameter == [11, 13, 17] and cfg.train_set_ids == [0, 2, 3, 4]
    assert cfg.val_set_ids == [5] and cfg.gpu_ids == [0, 1] and cfg.label_diameter == 9
    assert (cfg.label_type, cfg.norm_type, cfg.device, cfg.loss) == (
        "gaussian", "standardization", "cpu", "dice")
    assert type(cfg.lr) is float and cfg.augment == {**DEFAULT_AUGMENT, "elastic": 0.0}
    before = {name: getattr(cfg, name) for name in cfg.__dataclass_fields__}
    assert cfg.validate() is cfg
    assert {name: getattr(cfg, name) for name in cfg.__dataclass_fields__} == before
    written = original_read(format_config(cfg), "train_configs")
    assert written["label_diameter"] == "9" and written["train_set_ids"] == "0,2-4"
    assert written["lr"] == 1.0 and written["ocp_diameter"] == "11,13,17"


def test_a_string_set_after_the_config_was_made_is_reported_not_parsed():
    cfg = TrainConfig.from_dict(train_dict(), source="t.py")
    cfg.train_set_ids = "0-3"
    with pytest.raises(DeepETPickerError) as err:
        cfg.validate()
    assert str(err.value) == ("t.py: key 'train_set_ids' = '0-3': expected a list of whole "
                              "numbers such as [0, 1, 2, 3]")
    assert cfg.train_set_ids == "0-3"
    cfg.train_set_ids = [0, 1]
    cfg.label_type = "Ball"
    with pytest.raises(DeepETPickerError, match="'label_type' = 'Ball': write the name as "
                                                "'sphere'"):
        cfg.validate()


def test_a_changed_value_is_shown_as_it_is_now():
    cfg = TrainConfig.from_dict(train_dict(), source="t.py")
    cfg.ocp_diameter = [5, 9]
    with pytest.raises(DeepETPickerError, match=r"'ocp_diameter' = \[5, 9\]: gives 2 "):
        cfg.validate()


def test_paths_left_out_of_a_train_file_are_those_preprocessing_fills():
    data = train_dict(norm_type="MinMax", label_type="Ball")
    for key in ("coord_path", "tomo_path", "label_name", "label_path", "ocp_name", "ocp_path"):
        del data[key]
    cfg = TrainConfig.from_dict(data)
    pre = cfg.to_preprocess()
    assert cfg.tomo_path == "/data/ds/data_norm" and cfg.label_path == "/data/ds/sphere9"
    assert cfg.coord_path == "/data/ds/coords" and cfg.ocp_path == "/data/ds/data_ocp"
    for attr in ("data_dir", "coords_dir", "label_dir", "ocp_dir"):
        assert getattr(cfg, attr) == getattr(pre, attr), attr
    # a training config's folders are its keys, wherever they point
    moved = TrainConfig.from_dict(train_dict(tomo_path="/elsewhere/std"))
    assert moved.data_dir == Path("/elsewhere/std") and moved.label_dir == Path(
        "/data/ds/gaussian9")


def test_the_typing_patterns_admit_what_the_parsers_read_and_nothing_else():
    import re

    from deepetpicker.config.grammar import (
        IDS_TYPING_PATTERN,
        INT_LIST_TYPING_PATTERN,
        NAME_PATTERN,
    )

    for text, ids in (("0-7, 9", [0, 1, 2, 3, 4, 5, 6, 7, 9]), ("3", [3]), ("0,2", [0, 2])):
        assert re.fullmatch(IDS_TYPING_PATTERN, text) and parse_ids(text) == ids
    assert re.fullmatch(IDS_TYPING_PATTERN, "0,2,")      # half typed: admitted while editing
    for text in ("a", "1-", "-2", "1;2"):
        assert not re.fullmatch(IDS_TYPING_PATTERN, text)
    assert re.fullmatch(INT_LIST_TYPING_PATTERN, "7, 7,9") and parse_int_list("7, 7,9") == [7, 7, 9]
    assert not re.fullmatch(INT_LIST_TYPING_PATTERN, "7.5")
    assert re.fullmatch(NAME_PATTERN, "SHREC_2021") and not re.fullmatch(NAME_PATTERN, "a/b")


# ---------------------------------------------------------------------------------------------
# One weak-label diameter per class
# ---------------------------------------------------------------------------------------------
def test_label_diameters_are_written_only_when_set_and_keep_one_label_diameter(tmp_path):
    plain = PreprocessConfig.from_dict(pre_dict())
    assert plain.label_diameters is None and "label_diameters" not in plain.to_dict()
    assert plain.label_name == "gaussian9"

    cfg = PreprocessConfig.from_dict(pre_dict(label_diameter=7, label_diameters=[7, 9, 11]))
    path = save_config(cfg, tmp_path / "pre.py")
    written = original_read(path.read_text(), "pre_config")
    assert written["label_diameter"] == 7 and written["label_diameters"] == [7, 9, 11]
    again = load_preprocess_config(path)
    assert (again.label_diameter, again.label_diameters) == (7, [7, 9, 11])
    assert format_config(again) == path.read_text()

    # built in code without label_diameter: the smallest of the per-class diameters
    made = PreprocessConfig(**{**pre_dict(label_diameters="13,9,11"), "label_diameter": None})
    assert made.label_diameter == 9 and made.label_diameters == [13, 9, 11]
    assert made.to_dict()["label_diameters"] == "13,9,11"      # the form given


def test_label_diameters_name_their_own_label_folder():
    with pytest.warns(ConfigWarning, match="class 3 has particles of 17 voxels"):
        one = PreprocessConfig.from_dict(pre_dict(label_diameter=5))
    per_class = PreprocessConfig.from_dict(pre_dict(label_diameter=5, label_diameters=[5, 11, 9]))
    other = PreprocessConfig.from_dict(pre_dict(label_diameter=5, label_diameters=[5, 11, 7]))
    assert (one.label_name, per_class.label_name, other.label_name) == (
        "gaussian5", "gaussian5-11-9", "gaussian5-11-7")
    assert per_class.label_dir == Path("/data/ds/gaussian5-11-9")
    train = TrainConfig.from_preprocess(per_class, "0", "0")
    assert train.label_path == "/data/ds/gaussian5-11-9" and train.label_diameters == [5, 11, 9]
    assert train.to_preprocess().label_dir == per_class.label_dir
    # a training file without label_name/label_path derives the same folder
    derived = TrainConfig.from_dict(train_dict(label_name="", label_path="",
                                               label_diameter=5, label_diameters=[5, 11, 9]))
    assert derived.label_path == "/data/ds/gaussian5-11-9"


@pytest.mark.parametrize("value,expected", [
    ([9, 11], "gives 2 diameters but num_cls is 3"),
    ([9, 2, 11], "at least 3 voxels"),
    ([], "is empty"),
    ("9,x,11", "'x' is not a whole number"),
])
def test_bad_label_diameters_are_named(value, expected):
    with pytest.raises(DeepETPickerError, match="label_diameters") as err:
        PreprocessConfig.from_dict(pre_dict(label_diameters=value))
    assert expected in str(err.value)


def test_a_small_label_for_a_big_particle_warns_with_the_numbers():
    with pytest.warns(ConfigWarning) as record:
        PreprocessConfig.from_dict(pre_dict(label_diameter=5, ocp_diameter="8,18,12",
                                            class_names=["small", "ring", "mid"]),
                                   source="pre.py")
    messages = [str(w.message) for w in record]
    assert len(messages) == 1
    text = messages[0]
    assert text.startswith("pre.py: weak labels of 5 voxels")
    assert "class 2 (ring) has particles of 18 voxels" in text and "3.6 x" in text
    assert "class 1" not in text and "class 3" not in text      # 8 and 12 <= 2.5 x 5
    assert 'label_diameters, e.g. "5,11,7"' in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PreprocessConfig.from_dict(pre_dict(label_diameter=5, ocp_diameter="8,12,12"))
        PreprocessConfig.from_dict(pre_dict(label_diameter=5, ocp_diameter="8,18,12",
                                            label_diameters=[5, 11, 7]))
