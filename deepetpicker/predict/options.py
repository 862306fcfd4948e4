"""The options of a prediction in one place, checked before any file is read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Sequence, Union

from deepetpicker.errors import DeepETPickerError
from deepetpicker.predict.result import SCORE_DTYPES
from deepetpicker.types import PathLike

if TYPE_CHECKING:
    from deepetpicker.config import TrainConfig
    from deepetpicker.picking.settings import PickSettings
    from deepetpicker.picking.tiling import TileTransform, TTAChoice


@dataclass
class PredictOptions:
    """Everything :func:`~deepetpicker.predict.job.predict` takes besides the config, the
    weights, the tomograms and the output folder (its docstring says what each does).
    :meth:`checked` refuses a wrong value and returns the options in the form the job uses
    (export formats without ``coords``, the test-time transforms)."""

    pad: Optional[int] = None
    save_scores: bool = False
    formats: Sequence[str] = ()
    device: Optional[str] = None
    batch_size: Optional[int] = None
    score_dtype: str = "float16"
    picking: Union[None, PickSettings, dict] = None
    diameters: Optional[Sequence[float]] = None
    export: Optional[dict] = None
    overwrite: bool = False
    force: bool = False
    tta: TTAChoice = False
    zarr_level: Union[int, str, None] = None
    mask: Optional[PathLike] = None
    precision: Optional[str] = None
    transforms: tuple[TileTransform, ...] = field(default=(), init=False)

    def checked(self) -> PredictOptions:
        """Check every option (a wrong one raises :class:`DeepETPickerError` naming it) and
        fill in ``transforms``; the export formats lose ``coords``, which is always written."""
        from deepetpicker.io.format_specs import format_spec
        from deepetpicker.picking.settings import PickSettings
        from deepetpicker.picking.tiling import tta_transforms
        from deepetpicker.precision import resolve_precision

        if self.picking is None or isinstance(self.picking, dict):
            PickSettings.from_config(None, **dict(self.picking or {}))   # refuse bad values
        elif not isinstance(self.picking, PickSettings):
            raise TypeError(f"picking must be PickSettings or a dict, not "
                            f"{type(self.picking).__name__}")
        self.formats = [f for f in dict.fromkeys(self.formats or ()) if f != "coords"]
        for fmt in self.formats:
            format_spec(fmt)  # an unknown name is refused before any work
        if self.score_dtype not in SCORE_DTYPES:
            raise DeepETPickerError(f"score_dtype {self.score_dtype!r}: use float16 or float32.")
        if self.batch_size is not None and int(self.batch_size) < 1:
            raise DeepETPickerError(f"batch_size {self.batch_size}: use 1 or more tiles per "
                                    f"pass.")
        self.transforms = tta_transforms(self.tta)
        if self.precision is not None:
            resolve_precision(self.precision, "cpu")       # refuse an unknown name now
        return self

    def pick_settings(self, config: TrainConfig) -> PickSettings:
        """The picking rule: the settings given, or the config's with the overrides given."""
        from deepetpicker.picking.settings import PickSettings

        if isinstance(self.picking, PickSettings):
            return self.picking
        return PickSettings.from_config(config, **(self.picking or {}))
