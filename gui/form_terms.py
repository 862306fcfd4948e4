"""The library's messages in the words of the forms: config keys and command-line options
become the labels of the fields a tab shows.

The library speaks of config files and commands (``key 'base_path' = ''``, ``--min-score``,
``run `deepetpicker preprocess```), which is right for a config file or the command line. A
message about a config the GUI built from a form names the field the user sees instead
(``"Base path" = ''``). :func:`speak_form` rewrites the text for one form; the tables here
are the one place that knows which label shows which key or option. Nothing here changes what
a message says, only the names in it.
"""

from __future__ import annotations

import re

#: The forms: the Preprocessing, Training and Inference tabs.
PREPROCESS, TRAIN, INFER = "preprocess", "train", "infer"

#: Config key -> the label of the field that holds it in the Preprocessing tab.
PREPROCESS_FIELDS = {
    "dset_name": "Dataset name",
    "base_path": "Base path",
    "coord_path": "Coordinates",
    "coord_format": "Coordinates (file type)",
    "tomo_path": "Tomograms",
    "tomo_format": "Tomograms (file type)",
    "num_cls": "Number of classes",
    "label_type": "Label type",
    "label_diameter": "Label type / diameter",
    "label_diameters": "Label diameter per class",
    "ocp_diameter": "Particle diameters (ocp)",
    "norm_type": "Normalisation",
}

#: Config key -> the label of its field in the Training tab; the dataset's keys are set in
#: the Preprocessing tab.
TRAIN_FIELDS = {
    **{key: f"{label} (Preprocessing tab)" for key, label in PREPROCESS_FIELDS.items()},
    "num_cls": "Classes",
    "ocp_diameter": "Classes (particle diameters)",
    "dset_name": "Run name",
    "model_name": "Model",
    "f_maps": "Model",
    "init": "Start from",
    "train_set_ids": "Train ids",
    "val_set_ids": "Val ids",
    "batch_size": "Sizes > batch",
    "patch_size": "Sizes > patch",
    "padding_size": "Sizes > pad",
    "lr": "Schedule > lr",
    "max_epochs": "Schedule > epochs",
    "seed": "Schedule > seed",
    "loss": "Loss",
    "augment": "Augmentation",
    "device": "Device",
    "gpu_ids": "Device > GPU ids",
}

#: Config key or ``predict`` option -> the label of its field in the Inference tab.
INFER_FIELDS = {
    "patch_size": "Tiles > patch",
    "padding_size": "Tiles > pad",
    "seg_thresh": "Thresholds > t_seg",
    "t_lm": "Thresholds > t_lm",
    "t_dist": "Thresholds > t_dist",
    "localize": "Find particles",
    "device": "Device",
    "--weights": "Weights",
    "--config": "Train config",
    "--tomograms": "Input (Add files... / Add folder...)",
    "--copick": "Input > copick project",
    "--mask": "Mask",
    "--pad-size": "Tiles > pad",
    "--tta": "Test-time augmentation",
    "--t-seg": "Thresholds > t_seg",
    "--t-lm": "Thresholds > t_lm",
    "--t-dist": "Thresholds > t_dist",
    "--min-score": "Thresholds > min score",
    "--localize": "Find particles",
    "--device": "Device",
    "--out": "Output folder",
    "--format": "Output format",
    "--save-scores": "Output format > save score maps",
}

FORM_FIELDS = {PREPROCESS: PREPROCESS_FIELDS, TRAIN: TRAIN_FIELDS, INFER: INFER_FIELDS}

#: What a command in a message means in the GUI.
COMMANDS = {
    "preprocess": "press Run in the Preprocessing tab",
    "train": "press Train in the Training tab",
    "predict": "press Run in the Inference tab",
}

#: Config-file wording -> the same in the words of a form.
PHRASES = {
    "expected a non-empty text in quotes": "fill in this field",
}

_KEY_VALUE = re.compile(r"key '([A-Za-z_][\w.]*)'")
_OPTION = re.compile(r"(?<![\w-])--[a-z][a-z-]*")
_COMMAND = re.compile(r"run `deepetpicker (\w[\w-]*)`(?: on the [\w ]*?config)?")


def field_label(key: str, form: str) -> str | None:
    """The label of the field that holds config key or option ``key`` in ``form`` (for
    ``augment.elastic`` that of ``augment``), or None when the form shows no such field."""
    fields = FORM_FIELDS.get(form, {})
    return fields.get(key) or fields.get(key.split(".", 1)[0])


def speak_form(text: str, form: str) -> str:
    """``text`` (a message of the library) with the config keys, options and commands it
    names replaced by the labels of ``form``'s fields and the buttons that do the same.
    Names the form does not show stay as they are."""
    if not text or form not in FORM_FIELDS:
        return text

    def quoted(key: str, whole: str) -> str:
        label = field_label(key, form)
        return f'"{label}"' if label else whole

    out = _COMMAND.sub(lambda m: COMMANDS.get(m.group(1), m.group(0)), str(text))
    out = _KEY_VALUE.sub(lambda m: quoted(m.group(1), m.group(0)), out)
    out = _OPTION.sub(lambda m: quoted(m.group(0), m.group(0)), out)
    # bare key names: only those with an underscore, so words such as "loss" stay words
    keys = sorted((k for k in FORM_FIELDS[form] if "_" in k and not k.startswith("-")),
                  key=len, reverse=True)
    if keys:
        bare = re.compile(r"(?<![\w'\"./-])(" + "|".join(map(re.escape, keys))
                          + r")(?![\w'\"/-])")
        out = bare.sub(lambda m: quoted(m.group(1), m.group(0)), out)
    for phrase, spoken in PHRASES.items():
        out = out.replace(phrase, spoken)
    return out
