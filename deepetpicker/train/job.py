"""The training job: ``train(config, progress, cancel, resume, device) -> TrainResult``.

Trains the 3D-ResUNet on the patches of the training tomograms (AdamW, one-cycle learning
rate, the configured loss), and after every ``val_every`` epochs (and after the last one) runs
the inference pipeline on the validation tomograms - overlap-tile scan, peak picking,
de-duplication - and scores the picks against the validation particles (one-to-one matching
within a particle radius), so the best checkpoint is the one that picks best.

With ``ema_decay`` > 0 the job keeps an exponential moving average of the weights (BatchNorm
running statistics included), updated after every optimiser step with the decay
``min(ema_decay, (1 + step) / (10 + step))``. Validation (loss, picks, F1) runs on the average,
so the checkpoint is chosen on weights that one lucky or unlucky step does not swing.

Files under ``config.run_dir`` (``base_path/runs/<dset_name>``), each written atomically:

- ``last.pth``: the state after the last complete epoch (trained weights as ``state_dict``,
  their average as ``ema_state_dict``, optimiser, schedule, history); ``best.pth``: the
  validated weights (the average, if any) of the epoch with the best validation F1 so far as
  ``state_dict``, the trained ones as ``raw_state_dict``. Both hold the config, class names
  and diameters, so inference needs no other file.
- ``metrics.csv`` and ``metrics.json``: one row per epoch (train loss, val loss, precision,
  recall and F1 overall and per class, the lowest per-class F1 of a validation tomogram and
  the standard deviation over them (``f1_<k>_min``, ``f1_<k>_std``), learning rate, epoch and
  validation time); :func:`read_metrics` reads the JSON back.

A fresh run moves earlier files of the same run folder into ``old/<time>/``. ``resume``
continues from a ``last.pth``. With a fixed ``seed`` two CPU runs give the same loss curve,
and a run that was cancelled and resumed gives the same curve as one that was not.

Cancelling (the token, checked between steps and inside the network's forward and backward
passes) stops within about a second; the files of the last complete epoch stay valid.

Several processes (``torchrun --nproc_per_node=G -m deepetpicker train CONFIG``) train with
DistributedDataParallel; rank 0 alone validates and writes files.
"""

from __future__ import annotations

import math
import random
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler

from deepetpicker.errors import DeepETPickerError
from deepetpicker.model.checkpoint import BEST, FORMAT, LAST, read_checkpoint
from deepetpicker.model.pretrained import start_weights
from deepetpicker.model.resunet import ResUNet3D, count_parameters, probabilities
from deepetpicker.progress import CancelToken, ProgressCallback, Reporter
from deepetpicker.runtime import (
    DistInfo,
    barrier,
    env_world,
    mean_over_processes,
    resolve_device,
    setup_distributed,
    teardown_distributed,
)
from deepetpicker.train.augment import AugmentSettings
from deepetpicker.train.average import MovingAverage, decay_at
from deepetpicker.train.dataset import PatchDataset, attach_masks, check_patch_fits, load_entries
from deepetpicker.train.losses import class_term, get_loss
from deepetpicker.train.result import TrainResult, best_row, epoch_line, selection_f1
from deepetpicker.train.run_files import (
    LOG_CSV,
    LOG_JSON,
    archive_previous,
    read_metrics,
    save_best,
    save_last,
    write_logs,
)
from deepetpicker.train.validation import MATCH_FRACTION, VAL_LOSS_PATCHES, validate

if TYPE_CHECKING:
    from deepetpicker.config import TrainConfig

__all__ = ["LOG_CSV", "LOG_JSON", "MATCH_FRACTION", "VAL_LOSS_PATCHES", "TrainResult",
           "Trainer", "best_row", "epoch_line", "one_cycle", "read_metrics", "seed_everything",
           "selection_f1", "train"]




def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def _seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % (2 ** 32)
    random.seed(seed)
    np.random.seed(seed)


def one_cycle(optimizer: torch.optim.Optimizer, lr: float, total_steps: int
              ) -> torch.optim.lr_scheduler.OneCycleLR:
    """AdamW's one-cycle schedule: warm up to ``lr`` over the first 10 % of the steps (at least
    one), then cosine annealing to ``lr / 3000``."""
    total = max(int(total_steps) + 1, 4)
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=total, pct_start=max(0.1, 2.0 / total),
        anneal_strategy="cos", div_factor=30.0, final_div_factor=100.0)


class Trainer:
    """One training run's state: data, network, optimiser, schedule, history.

    :func:`train` drives it; the pieces (:meth:`loader`, :meth:`train_step`, :meth:`validate`)
    are public for benchmarks and tests. The network starts from the weights the config's
    ``init`` names (see :mod:`deepetpicker.model.pretrained`) unless ``initial_weights`` is
    False (a run about to resume, whose checkpoint brings its own).
    """

    def __init__(self, cfg, device: torch.device, info: DistInfo = DistInfo(),
                 report: Optional[Reporter] = None, initial_weights: bool = True) -> None:
        self.cfg = cfg
        self.device = device
        self.info = info
        self.report = report or Reporter()
        self.amp = device.type == "cuda"
        seed_everything(int(cfg.seed))
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True

        self.train_entries = load_entries(cfg, cfg.train_set_ids, "train_set_ids")
        self.val_entries = load_entries(cfg, cfg.val_set_ids, "val_set_ids")
        check_patch_fits(self.train_entries, cfg.patch_size)
        attach_masks(self.train_entries + self.val_entries, cfg.mask_path)
        n_particles = sum(len(e.picks) for e in self.train_entries)
        if n_particles == 0:
            files = ", ".join(str(e.coord_path) for e in self.train_entries)
            raise DeepETPickerError(
                f"train_set_ids = {list(cfg.train_set_ids)}: the training tomograms hold no "
                f"particles ({files} are empty). Pick some particles in them (Visualization "
                f"tab or a coordinate file), run preprocessing again, or choose other ids.")
        self.train_set = PatchDataset(
            self.train_entries, cfg.patch_size, cfg.num_cls,
            augment=AugmentSettings.from_config(cfg.augment),
            background_fraction=cfg.background_fraction, seed=int(cfg.seed))
        self.val_set = PatchDataset(self.val_entries, cfg.patch_size, cfg.num_cls, jitter=0,
                                    seed=int(cfg.seed), max_particles=VAL_LOSS_PATCHES)

        self.net = ResUNet3D(in_channels=1, num_classes=cfg.num_cls, f_maps=cfg.f_maps,
                             coord_conv=cfg.coord_conv, pyramid=cfg.pyramid).to_device(device)
        #: Where the weights started (``init``), as recorded in every checkpoint.
        self.init_info: dict = {"init": cfg.init, "weights": "resumed"}
        if initial_weights:
            self.init_info = start_weights(self.net, cfg.init)
            self.report.log(self.init_info["message"])
        #: The moving average of the weights (same device and memory layout), or None.
        self.ema_decay = float(cfg.ema_decay)
        self.average = MovingAverage(self.net, self.ema_decay) if self.ema_decay > 0 else None
        self.model: torch.nn.Module = self.net
        if info.enabled:
            if device.type == "cuda":
                self.net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.net)
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.net, device_ids=[device.index] if device.type == "cuda" else None)
        else:
            self._install_cancel_hooks(self.net)
            if self.ema_net is not None:
                self._install_cancel_hooks(self.ema_net)
        if self.average is not None:
            self.average.follow(self.net)
        self.loss_fn = get_loss(cfg.loss)
        self.class_loss_weight = float(cfg.class_loss_weight)
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr,
                                           betas=(0.9, 0.99), weight_decay=cfg.weight_decay)
        per_process = math.ceil(len(self.train_set) / info.world_size)
        self.steps_per_epoch = max(1, math.ceil(per_process / cfg.batch_size))
        self.total_steps = self.steps_per_epoch * cfg.max_epochs
        self.scheduler = one_cycle(self.optimizer, cfg.lr, self.total_steps)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.history: list[dict] = []
        self.start_epoch = 0
        self.global_step = 0
        self.best_f1: Optional[float] = None
        self.best_epoch: Optional[int] = None
        # per class: the score threshold tuned at the best epoch (see validate)
        self.best_thresholds: Optional[list[float]] = None

    # -- building blocks --------------------------------------------------------------------
    def _install_cancel_hooks(self, net: ResUNet3D) -> None:
        """Check the cancel token after each network level runs, forwards and backwards."""
        token = self.report.token

        def on_grad(grad):
            token.check()

        def on_forward(module, inputs, output):
            token.check()
            if output.requires_grad:
                output.register_hook(on_grad)

        for level in list(net.encoders) + list(net.decoders):
            level.register_forward_hook(on_forward)

    def ema_decay_at(self, step: int) -> float:
        """The decay of the moving average at optimisation step ``step`` (see
        :func:`~deepetpicker.train.average.decay_at`)."""
        return decay_at(self.ema_decay, step)

    def update_ema(self) -> None:
        """Move the averaged weights towards the trained ones (after an optimiser step)."""
        if self.average is not None:
            self.average.update(self.global_step)

    @property
    def ema_net(self) -> Optional[ResUNet3D]:
        """The moving average of the weights (same device and memory layout), or None."""
        return None if self.average is None else self.average.net

    @property
    def eval_net(self) -> ResUNet3D:
        """The network that is validated and saved as ``best.pth``: the moving average of the
        weights when ``ema_decay`` > 0, else the trained network itself."""
        return self.net if self.ema_net is None else self.ema_net

    def loader(self, dataset: PatchDataset, epoch: int, shuffle: bool) -> DataLoader:
        """The DataLoader of ``dataset`` for ``epoch`` (its shard in a multi-process run)."""
        dataset.set_epoch(epoch)
        seed = int(self.cfg.seed) * 1_000_003 + epoch
        if shuffle and self.info.enabled:
            sampler = torch.utils.data.DistributedSampler(
                dataset, num_replicas=self.info.world_size, rank=self.info.rank, shuffle=True,
                seed=int(self.cfg.seed), drop_last=False)
            sampler.set_epoch(epoch)
        elif shuffle:
            sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
        else:
            sampler = None
        workers = int(self.cfg.num_workers)
        return DataLoader(dataset, batch_size=int(self.cfg.batch_size), sampler=sampler,
                          shuffle=False, num_workers=workers,
                          pin_memory=self.device.type == "cuda", drop_last=False,
                          worker_init_fn=_seed_worker if workers else None,
                          generator=torch.Generator().manual_seed(seed),
                          prefetch_factor=2 if workers else None)

    def train_step(self, images: torch.Tensor, targets: torch.Tensor) -> float:
        """One optimisation step on a batch; returns its loss."""
        self.model.train()
        images = images.to(self.device, non_blocking=True)
        targets = targets.to(self.device, non_blocking=True)
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=self.device.type, dtype=torch.float16,
                            enabled=self.amp):
            logits = self.model(images)
        loss = self.objective(logits, targets)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.update_ema()
        value = float(loss.detach())
        if not math.isfinite(value) and not self.amp:
            raise DeepETPickerError(
                f"Training diverged: the loss is {value} at step {self.global_step + 1}. "
                f"Lower the learning rate lr (now {self.cfg.lr:g}), e.g. to "
                f"{self.cfg.lr / 10:g}, and check the tomograms for extreme values.")
        return value

    def objective(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The training loss: the segmentation loss, plus ``class_loss_weight`` times the
        cross-entropy over background and classes (several classes only; see
        :func:`~deepetpicker.train.losses.class_term`)."""
        loss = self.loss_fn(logits, targets)
        if self.class_loss_weight > 0 and logits.shape[1] > 2:
            loss = loss + self.class_loss_weight * class_term(logits, targets)
        return loss

    def predict_scores(self, batch: torch.Tensor) -> torch.Tensor:
        """Class scores ``(B, K, N, N, N)`` of a batch of patches (eval mode, no gradients)."""
        return probabilities(self._eval_logits(batch))

    # -- one epoch ----------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> float:
        """Train one epoch; returns the mean loss (over all processes)."""
        cfg = self.cfg
        total, count = 0.0, 0
        for step, (images, targets) in enumerate(self.loader(self.train_set, epoch, True),
                                                 start=1):
            loss = self.train_step(images, targets)
            total += loss * len(images)
            count += len(images)
            self.global_step += 1
            lr = self.scheduler.get_last_lr()[0]
            self.report("train", self.global_step, self.total_steps,
                        message=f"epoch {epoch + 1}/{cfg.max_epochs}, step {step}/"
                                f"{self.steps_per_epoch}: loss {loss:.4f}",
                        item=f"epoch {epoch + 1}", loss=loss, lr=lr, epoch=epoch + 1,
                        step=step)
        return mean_over_processes(total / max(count, 1), self.info, self.device)

    def validate(self, epoch: int) -> dict:
        """The validation row of epoch ``epoch`` (see
        :func:`~deepetpicker.train.validation.validate`)."""
        return validate(self, epoch)

    def resume_from(self, path: Union[str, Path]) -> None:
        """Continue from a checkpoint written by this job (``last.pth``)."""
        data = read_checkpoint(path, "cpu", prefer=LAST)
        if data.get("format") != FORMAT or "optimizer" not in data:
            raise DeepETPickerError(
                f"Cannot resume from {path}: it holds weights only (no optimiser state, e.g. "
                f"a checkpoint of the original program). Resume from the last.pth of a "
                f"DeepETPicker run, or start a new run.")
        ours = self.net.model_args()
        theirs = dict(data.get("model_args", {}))
        if theirs != ours:
            diff = ", ".join(f"{key} {theirs.get(key)!r} -> {ours[key]!r}" for key in ours
                             if theirs.get(key) != ours[key])
            raise DeepETPickerError(
                f"Cannot resume from {path}: its network differs from this config ({diff}). "
                f"Use the config the run was started with.")
        raw = data.get("raw_state_dict") or data["state_dict"]
        self.net.load_state_dict(raw)
        if self.ema_net is not None:
            # last.pth keeps the average apart; best.pth holds it as its state_dict; a run
            # that had no average starts one from the trained weights
            average = data.get("ema_state_dict") or (
                data["state_dict"] if data.get("raw_state_dict") else raw)
            self.ema_net.load_state_dict(average)
        self.optimizer.load_state_dict(data["optimizer"])
        self.global_step = int(data.get("global_step", 0))
        saved = data.get("scheduler") or {}
        if saved.get("total_steps") == self.scheduler.total_steps:
            self.scheduler.load_state_dict(saved)
        else:
            self.report.log(f"The number of steps changed since {path} was written "
                            f"(max_epochs or data); the learning-rate schedule is stretched "
                            f"to the new length.")
            for group in self.optimizer.param_groups:
                group["lr"] = group["initial_lr"]
            self.scheduler = one_cycle(self.optimizer, self.cfg.lr, self.total_steps)
            with warnings.catch_warnings():  # fast-forwarding, no optimiser steps to take
                warnings.simplefilter("ignore", UserWarning)
                for _ in range(min(self.global_step, self.total_steps)):
                    self.scheduler.step()
        if self.amp and data.get("scaler"):
            self.scaler.load_state_dict(data["scaler"])
        self.history = list(data.get("history") or [])
        self.best_f1 = data.get("best_f1")
        self.best_epoch = data.get("best_epoch")
        self.best_thresholds = data.get("score_thresholds")
        self.init_info = data.get("init") or self.init_info
        self.start_epoch = int(data["epoch"])

    def _eval_logits(self, images: torch.Tensor) -> torch.Tensor:
        net = self.eval_net
        net.eval()
        with torch.no_grad(), torch.autocast(device_type=self.device.type,
                                             dtype=torch.float16, enabled=self.amp):
            return net(images.to(self.device, non_blocking=True)).float()


def train(config: TrainConfig, progress: Optional[ProgressCallback] = None,
          cancel: Optional[CancelToken] = None, resume: Union[str, Path, None] = None,
          device: Optional[str] = None) -> TrainResult:
    """Train the network described by ``config`` (a :class:`deepetpicker.config.TrainConfig`).

    ``device`` (``auto | cpu | cuda | cuda:N``) overrides ``config.device``; ``resume`` is the
    path of a ``last.pth`` to continue. Progress stages: ``train`` (every step; done/total
    count steps over the whole run, so ``eta_s`` is the time left for training), ``validate``
    (tiles of each validation tomogram) and ``epoch`` (one event per epoch, its metrics in
    ``metrics``). Raises :class:`deepetpicker.progress.Cancelled` when cancelled and
    :class:`DeepETPickerError` for problems with the data or settings.
    """
    from deepetpicker.io.atomic import remove_stale_parts
    from deepetpicker.io.outputs import check_output_folder, stale_note

    cfg = config
    cfg.validate(check_paths=False)
    check_output_folder(cfg.run_dir, "run folder", "base_path and dset_name in the config")
    stale = remove_stale_parts(cfg.run_dir)         # left by a run that was killed
    rank, world, local = env_world()
    dev = resolve_device(device or cfg.device, cfg.gpu_ids, local, world > 1)
    info = setup_distributed(dev)
    # other processes share the cancel token but send no events (rank 0 speaks for the run)
    report = Reporter(progress if info.is_main else None, cancel)
    if stale:
        report.log(stale_note(stale))
    try:
        return _run(cfg, dev, info, report, resume)
    except torch.OutOfMemoryError as exc:
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        raise _out_of_memory(cfg, dev, exc) from exc
    except RuntimeError as exc:
        if "DefaultCPUAllocator" in str(exc) or "not enough memory" in str(exc):
            raise _out_of_memory(cfg, dev, exc) from exc
        raise
    finally:
        teardown_distributed(info)


def _out_of_memory(cfg, dev: torch.device, exc: Exception) -> DeepETPickerError:
    gpu = dev.type == "cuda"
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return DeepETPickerError(
        f"{f'The GPU ({dev})' if gpu else 'The computer'} ran out of memory with batch_size "
        f"{cfg.batch_size} and patch_size {cfg.patch_size}: lower batch_size (e.g. to "
        f"{max(1, cfg.batch_size // 2)}) or patch_size (e.g. to {max(16, cfg.patch_size - 16)}), "
        f"use the light network (f_maps 8,16,24,36), or close other programs using the "
        f"{'GPU' if gpu else 'memory'}. ({detail})")


def _run(cfg, dev: torch.device, info: DistInfo, report: Reporter, resume) -> TrainResult:
    trainer = Trainer(cfg, dev, info, report, initial_weights=resume is None)
    run_dir = Path(cfg.run_dir)
    if resume is not None:
        trainer.resume_from(resume)
        report.log(f"Resuming from {resume} after epoch {trainer.start_epoch} "
                   f"(step {trainer.global_step}).")
    elif info.is_main:
        archive_previous(run_dir, report)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    n_part = len(trainer.train_set.particles)
    report.log(
        f"Training on {dev} ({info.world_size} process(es)): {count_parameters(trainer.net):,} "
        f"parameters, {n_part} particles + {trainer.train_set.n_background} background "
        f"patches per epoch from {len(trainer.train_entries)} tomogram(s), "
        f"{trainer.steps_per_epoch} steps of {cfg.batch_size} per epoch; validating on "
        f"{len(trainer.val_entries)} tomogram(s)"
        + (f" with the moving average of the weights (ema_decay {trainer.ema_decay:g})."
           if trainer.ema_net is not None else "."))
    if cfg.mask_path:
        report.log(f"Region of interest {cfg.mask_path}: background patches are drawn inside "
                   f"the masks; validation leaves out the picks and particles outside them.")
    if dev.type == "cuda" and int(cfg.num_workers) == 0:
        report.log("Batches are prepared in the training process (num_workers 0); on a GPU "
                   "set num_workers to 4-8 in the config so that data loading overlaps the "
                   "network's work.")
    if dev.type == "cuda" and len(cfg.gpu_ids) > 1 and not info.enabled:
        report.log(f"gpu_ids lists {len(cfg.gpu_ids)} GPUs but this run uses {dev}. To train on "
                   f"all of them run: torchrun --nproc_per_node={len(cfg.gpu_ids)} -m "
                   f"deepetpicker train CONFIG")

    last_path = run_dir / LAST if (run_dir / LAST).exists() and resume is not None else None
    best_path = run_dir / BEST if (run_dir / BEST).exists() and resume is not None else None
    csv_path = json_path = None
    for epoch in range(trainer.start_epoch, cfg.max_epochs):
        t0 = time.monotonic()
        train_loss = trainer.train_epoch(epoch)
        epoch_time = time.monotonic() - t0
        row: dict = {"epoch": epoch + 1, "train_loss": train_loss,
                     "lr": trainer.scheduler.get_last_lr()[0], "epoch_time_s": epoch_time}
        validate = (epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.max_epochs
        if validate and info.is_main:
            t1 = time.monotonic()
            row.update(trainer.validate(epoch))
            row["val_time_s"] = time.monotonic() - t1
        trainer.history.append(row)
        score = selection_f1(row)
        improved = score is not None and (trainer.best_f1 is None or score > trainer.best_f1)
        if improved:
            trainer.best_f1, trainer.best_epoch = score, epoch + 1
            trainer.best_thresholds = [float(row[f"min_score_{c}"])
                                       for c in range(1, int(cfg.num_cls) + 1)]
        if info.is_main:
            last_path = save_last(trainer, run_dir / LAST, epoch + 1)
            if improved:
                best_path = save_best(trainer, run_dir / BEST, epoch + 1)
            csv_path, json_path = write_logs(trainer.history, run_dir)
        barrier(info)
        report("epoch", epoch + 1, cfg.max_epochs, message=epoch_line(row, cfg.max_epochs,
                                                                      improved),
               item=f"epoch {epoch + 1}", keep=True,
               **{key: value for key, value in row.items() if isinstance(value, (int, float))})
    if info.is_main and csv_path is None and trainer.history:
        csv_path, json_path = write_logs(trainer.history, run_dir)
    trainer.net.eval()
    trainer.eval_net.eval()
    return TrainResult(run_dir=run_dir, last_checkpoint=last_path, best_checkpoint=best_path,
                       best_f1=trainer.best_f1, best_epoch=trainer.best_epoch,
                       epochs=len(trainer.history), history=trainer.history, device=str(dev),
                       log_csv=csv_path or (run_dir / LOG_CSV if info.is_main else None),
                       log_json=json_path or (run_dir / LOG_JSON if info.is_main else None),
                       model=trainer.eval_net, score_thresholds=trainer.best_thresholds)
