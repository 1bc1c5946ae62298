"""The training loop: the original recipe (loss, Adam, per-iteration StepLR, logging, checkpoint
steps) on DistributedDataParallel, with mixed precision and exact resumption.

Exact resumption (``--resume CKPT --resume-step``) restores, besides the weights, the optimizer,
the LR scheduler, the fp16 grad scaler, every rank's RNG states (python, numpy, torch, CUDA) and
the position inside the epoch; the data order comes from ``ResumableSampler`` (seeded per
epoch) and each sample only from ``(seed, epoch, index)``, so the resumed run takes the same
steps on the same batches with the same dropout masks as an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim import Adam
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from ..atomic import make_dirs, remove_temporaries, write_json_atomic
from ..checkpoint import Checkpoint, check_state_dict, read_checkpoint, save_checkpoint
from ..cpus import available_cpus
from ..distributed import DistContext, all_gather_objects, all_reduce_sum, init_process_group, planned_context, shutdown
from ..errors import SSMVOSError
from ..model import SSM
from ..runtime import autocast, cudnn_benchmark, matmul_scope
from .config import TrainConfig, check_config
from .outputs import check_run_folder, checkpoint_path, existing_checkpoints, run_paths, train_logger
from .state import ResumableSampler, capture_rng_state, loader_generator, restore_rng_state, seed_everything

#: Weight of the structure branch's loss, as in the original.
STRUCT_LOSS_WEIGHT = 0.1
#: Settings whose change between a checkpoint and the resumed run breaks exact resumption.
RESUME_SENSITIVE = ("batch_size", "seed", "base_lr", "encoder_lr_weight", "lr_decay_step", "lr_decay_rate",
                    "weight_decay", "precision", "input_height", "input_width", "flip_rate", "blur_rate",
                    "rotation", "min_margin", "max_margin", "split")


# --------------------------------------------------------------------------- pure pieces
def segmentation_loss(logits: Tensor, struct_logits: Tensor, mask: Tensor) -> Tensor:
    """CE(logits, mask) + 0.1·CE(struct_logits, mask), each the mean over all pixels (in fp32).

    logits, struct_logits: N×2×H×W; mask: N×1×H×W in {0, 1}.
    """
    target = mask.squeeze(1).round().long()
    return (F.cross_entropy(logits.float(), target)
            + STRUCT_LOSS_WEIGHT * F.cross_entropy(struct_logits.float(), target))


def intersection_union(logits: Tensor, mask: Tensor) -> Tensor:
    """Foreground intersection and union of argmax(logits) with the mask over the whole batch.

    logits: N×2×H×W; mask: N×1×H×W -> float64 tensor [intersection, union].
    """
    pred = logits.argmax(dim=1).bool()
    gt = mask.squeeze(1) > 0.5
    return torch.stack([(pred & gt).sum(), (pred | gt).sum()]).double()


def iou_from(inter: float, union: float) -> float:
    """The original's IoU: intersection / union, 1.0 when both masks are empty."""
    return float(inter / union) if union else 1.0


def parameter_groups(model: SSM, base_lr: float, encoder_lr_weight: float) -> list[dict[str, Any]]:
    """Adam groups: 0 = encoder (lr base_lr·encoder_lr_weight), 1 = everything else (base_lr).

    The original builds one group and ignores ``--encoder-lr-weight``; with its default 1.0
    the two groups train exactly as one (Adam works per parameter).
    """
    encoder = [p for p in model.encoder.parameters() if p.requires_grad]
    ids = {id(p) for p in model.encoder.parameters()}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
    return [{"params": encoder, "lr": base_lr * encoder_lr_weight}, {"params": rest, "lr": base_lr}]


def loader_error(exc: Exception) -> Exception:
    """The error to report for ``exc`` raised while fetching a batch.

    PyTorch re-raises a DataLoader worker's error with the worker's whole traceback inside its
    message; the user needs its last line (an SSMVOSError's own message), or what killed the
    worker. Errors that did not come from a worker are returned as they are.
    """
    text = str(exc)
    if "DataLoader worker" not in text:
        return exc
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else type(exc).__name__
    if isinstance(exc, SSMVOSError) and ": " in last:
        return SSMVOSError(last.split(": ", 1)[1])
    if len(lines) == 1:  # the worker died without a Python error (signal, out of memory)
        return SSMVOSError(f"{last} (out of memory? try fewer --num-workers or a smaller --batch-size)")
    return SSMVOSError(f"a DataLoader worker failed: {last}")


def _batches(loader: DataLoader):
    """Iterate ``loader``, reporting a worker's error by :func:`loader_error`."""
    it = iter(loader)
    while True:
        try:
            batch = next(it)
        except StopIteration:
            return
        except Exception as exc:
            error = loader_error(exc)
            if error is exc:
                raise
            raise error from None
        yield batch


def capped_workers(requested: int, local_world_size: int) -> int:
    """``requested`` DataLoader workers, at most the CPUs available per local process."""
    return min(requested, max(1, available_cpus() // max(1, local_world_size)))


@dataclass
class TrainSummary:
    """What a run did: the next global step, per-step loss/IoU/end time of this run, checkpoints written."""

    global_step: int
    losses: list[float] = field(default_factory=list)
    ious: list[float] = field(default_factory=list)
    step_ends: list[float] = field(default_factory=list)  # time.perf_counter() after each step
    checkpoints: list[Path] = field(default_factory=list)


# --------------------------------------------------------------------------- setup helpers
def build_train_set(config: TrainConfig) -> Dataset:
    """The training split as a TrainSet (checks the split and every file it names)."""
    from ..data.splits import check_files, load_split
    from ..data.train_set import TrainSet

    entries = load_split(config.split)
    check_files(entries, f"split {config.split}")
    return TrainSet(entries, height=config.input_height, width=config.input_width, min_margin=config.min_margin,
                    max_margin=config.max_margin, flip_rate=config.flip_rate, rotation=config.rotation,
                    blur_rate=config.blur_rate, seed=config.seed)


def build_model(config: TrainConfig, resume: Checkpoint | None) -> SSM:
    """The network on the CPU, seeded with ``config.seed``; weights from ``resume`` (strict) if given."""
    seed_everything(config.seed)
    model = SSM(encoder=config.encoder, matching=config.matching, keep_topk=config.keep_topk)
    if resume is not None:
        check_state_dict(model, resume.model_state, f"checkpoint {config.resume}")
        model.load_state_dict(resume.model_state, strict=True)
    return model


def imagenet_init(model: SSM, seed: int) -> None:
    """ImageNet weights into the encoder (4th conv1 channel from a generator seeded with ``seed``)."""
    from ..weights import init_encoder_from_imagenet

    init_encoder_from_imagenet(model, torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- the loop
class Trainer:
    """Holds the network, optimizer, schedule and data pipeline of one process; ``fit()`` trains.

    Rank 0 alone logs, writes TensorBoard scalars and checkpoints; every rank takes part in
    the collectives (gradient all-reduce, loss/IoU reduction, RNG gathering at checkpoints).
    """

    def __init__(self, config: TrainConfig, ctx: DistContext, dataset: Dataset, model: SSM,
                 logger: logging.Logger, resume: Checkpoint | None = None):
        self.config, self.ctx, self.dataset, self.log = config, ctx, dataset, logger
        self.device = ctx.device
        self.paths = run_paths(config.model_dir)
        self.per_rank_batch = config.batch_size // ctx.world_size

        self.model = model.to(self.device)
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model.train()
        self.net: nn.Module = self.model
        if ctx.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)

        # Fused Adam: the same update rule in one kernel per step (CPU and CUDA).
        self.optimizer = Adam(parameter_groups(self.model, config.base_lr, config.encoder_lr_weight),
                              lr=config.base_lr, weight_decay=config.weight_decay,
                              fused=self.device.type in ("cpu", "cuda"))
        self.scheduler = StepLR(self.optimizer, step_size=config.lr_decay_step, gamma=config.lr_decay_rate)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.precision == "fp16")

        self.num_workers = capped_workers(config.num_workers, ctx.local_world_size)
        self.sampler = ResumableSampler(dataset, ctx.world_size, ctx.rank, config.seed)
        self.global_step, self.start_epoch, self.start_samples = 0, 0, 0
        self.restored = False
        seed_everything(config.seed + ctx.rank)
        if resume is not None and config.resume_step:
            self._restore(resume)

    # ----------------------------------------------------------------------- resume
    def _restore(self, ckpt: Checkpoint) -> None:
        """Restore global_step and, when the checkpoint has them, all training states."""
        step = ckpt.global_step
        if step is None:
            raise SSMVOSError(f"--resume-step: checkpoint {self.config.resume} records no global_step")
        self.global_step = step + 1
        state = ckpt.extra.get("train_state")
        if not isinstance(state, dict):
            self.log.warning("checkpoint %s holds weights and global_step only (no training state): continuing "
                             "at step %d with a fresh optimizer, LR schedule and epoch 0, as the original does",
                             self.config.resume, self.global_step)
            return
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if state.get("grad_scaler") and self.scaler.is_enabled():
                self.scaler.load_state_dict(state["grad_scaler"])
            self.start_epoch = int(state["epoch"])
            self.start_samples = int(state["epoch_samples"])
            saved_world = int(state["world_size"])
            rng = state["rng"]
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise SSMVOSError(f"--resume-step: the training state in {self.config.resume} does not fit this run "
                              f"({type(exc).__name__}: {exc})") from None
        saved_config = state.get("config", {})
        changed = [k for k in RESUME_SENSITIVE if k in saved_config and saved_config[k] != getattr(self.config, k)]
        if changed:
            self.log.warning("resumed with settings that differ from the checkpoint's (%s): the run will not "
                             "repeat the uninterrupted one exactly", ", ".join(changed))
        if saved_world == self.ctx.world_size and len(rng) == saved_world:
            restore_rng_state(rng[self.ctx.rank], self.device)
        else:
            self.log.warning("checkpoint written by %d processes, resumed with %d: data order is kept, the "
                             "dropout RNG streams start afresh", saved_world, self.ctx.world_size)
            seed_everything(self.config.seed + self.ctx.rank + 7919 * self.global_step)
        self.restored = True

    def _train_state(self, epoch: int, epoch_samples: int, rng: list[dict]) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "grad_scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "epoch": epoch,
            "epoch_samples": epoch_samples,
            "world_size": self.ctx.world_size,
            "rng": rng,
            "config": self.config.to_dict(),
        }

    def save(self, epoch: int, epoch_samples: int) -> Path | None:
        """Checkpoint ``<global_step>.pt`` (every rank joins the RNG gathering; rank 0 writes)."""
        rng = all_gather_objects(self.ctx, capture_rng_state(self.device))
        if not self.ctx.is_main:
            return None
        path = checkpoint_path(self.config.model_dir, self.global_step)
        weights = {k: v.detach().to("cpu").contiguous() for k, v in self.model.state_dict().items()}
        save_checkpoint(path, weights, self.global_step, model_config=dict(self.model.config),
                        train_state=self._train_state(epoch, epoch_samples, rng))
        return path

    # ----------------------------------------------------------------------- one step
    def train_step(self, batch: list[Tensor]) -> tuple[float, float]:
        """Forward, loss, backward and update on this rank's batch; returns the global (loss, IoU)."""
        fmt = torch.channels_last if self.config.channels_last else torch.contiguous_format
        ref_img, ref_mask, cur_img, cur_mask, prev_mask = (
            t.to(self.device, non_blocking=True).contiguous(memory_format=fmt) for t in batch)
        with autocast(self.device, self.config.precision):
            logits, struct_logits = self.net(ref_img, ref_mask, cur_img, prev_mask)
        loss = segmentation_loss(logits, struct_logits, cur_mask)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        stats = torch.cat([loss.detach().double().reshape(1), intersection_union(logits.detach(), cur_mask)])
        stats = all_reduce_sum(stats).tolist()
        return stats[0] / self.ctx.world_size, iou_from(stats[1], stats[2])

    def loader(self, epoch: int) -> DataLoader:
        """This rank's DataLoader for ``epoch`` (call after the sampler and dataset were set to it)."""
        from ..data import train_set

        return DataLoader(self.dataset, batch_size=self.per_rank_batch, sampler=self.sampler,
                          num_workers=self.num_workers, pin_memory=self.device.type == "cuda", drop_last=False,
                          persistent_workers=False, generator=loader_generator(self.config.seed, epoch, self.ctx.rank),
                          worker_init_fn=getattr(train_set, "worker_init_fn", None) if self.num_workers else None)

    def _planned_steps(self) -> int:
        per_epoch = -(-self.sampler.num_samples // self.per_rank_batch)
        done_in_start = (self.start_samples // self.ctx.world_size) // self.per_rank_batch
        total = max(0, (self.config.max_epoch - self.start_epoch) * per_epoch - done_in_start)
        if self.config.max_steps is not None:
            total = min(total, max(0, self.config.max_steps - self.global_step))
        return total

    def _train_epoch(self, epoch: int, summary: TrainSummary, writer: Any, bar: tqdm) -> bool:
        """One epoch (from the resume position if it is the first); False once --max-steps is reached."""
        cfg, ctx, log = self.config, self.ctx, self.log
        skip = (self.start_samples if epoch == self.start_epoch else 0) // ctx.world_size
        self.sampler.set_epoch(epoch)
        self.sampler.set_start(skip)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        log.info(f"training epoch {epoch}")
        losses, ious, done = [], [], skip
        more = True
        for batch_index, batch in enumerate(_batches(self.loader(epoch)), start=skip // self.per_rank_batch):
            step = self.global_step
            loss, iou = self.train_step(batch)
            done += batch[0].shape[0]
            losses.append(loss)
            ious.append(iou)
            if writer is not None:
                writer.add_scalar("train/loss", loss, global_step=step)
                writer.add_scalar("train/iou", iou, global_step=step)
            if step % cfg.lr_decay_step == 0 or not summary.losses:  # and at the first step of every run
                for idx, group in enumerate(self.optimizer.param_groups):
                    log.info(f"group {idx}: learning_rate: {group['lr']}")
                    if writer is not None:
                        writer.add_scalar(f"lr/group_{idx}", group["lr"], global_step=step)
            if (step + 1) % cfg.log_step == 0:
                log.info(f"step {step} ({epoch}, {batch_index}): loss: {loss:.4f}, iou: {iou:.4f}")
            self.scheduler.step()
            if (step + 1) % cfg.save_step == 0:
                epoch_done = done >= self.sampler.num_samples
                log.info(f"step {step} ({epoch}, {batch_index}): saving checkpoint to "
                         f"{checkpoint_path(cfg.model_dir, step)}")
                written = self.save(epoch + 1 if epoch_done else epoch, 0 if epoch_done else done * ctx.world_size)
                if written is not None:
                    summary.checkpoints.append(written)
            self.global_step += 1
            summary.global_step = self.global_step
            summary.losses.append(loss)
            summary.ious.append(iou)
            summary.step_ends.append(time.perf_counter())
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", iou=f"{iou:.4f}", refresh=False)
            if cfg.max_steps is not None and self.global_step >= cfg.max_steps:
                more = False
                break
        if losses:
            log.info(f"epoch {epoch}: train_loss: {sum(losses) / len(losses):.4f}, iou: {sum(ious) / len(ious):.4f}")
        return more

    def fit(self) -> TrainSummary:
        """Train from the current state up to --max-epoch epochs or --max-steps global steps."""
        from torch.utils.tensorboard import SummaryWriter

        cfg, ctx, log = self.config, self.ctx, self.log
        summary = TrainSummary(self.global_step)
        backend = torch.distributed.get_backend() if torch.distributed.is_initialized() else "none"
        log.info("training on %s, %d process(es) (process group: %s), global batch %d (%d per process), precision "
                 "%s, %d samples, %d loader workers per process", self.device, ctx.world_size, backend, cfg.batch_size,
                 self.per_rank_batch, cfg.precision, len(self.dataset), self.num_workers)
        if cfg.precision == "fp16" and self.device.type == "cpu":
            log.warning("--precision fp16 on the CPU: PyTorch has few fast fp16 CPU kernels (here a step took ~20x "
                        "the fp32 time) and fp16 overflows on large logits; --precision bf16 is the fast CPU choice")
        if self.num_workers < cfg.num_workers:
            log.info("num_workers %d capped to %d (the CPUs available per process)", cfg.num_workers,
                     self.num_workers)
        if self.restored:
            log.info("resumed from %s at step %d (epoch %d, %d samples into it)", cfg.resume, self.global_step,
                     self.start_epoch, self.start_samples)
        planned = self._planned_steps()
        if planned == 0:
            log.info("nothing to do: step %d reached --max-steps/--max-epoch", self.global_step)
            return summary

        show = ctx.is_main and sys.stderr.isatty()
        with contextlib.ExitStack() as stack:
            # TF32 only for --precision tf32 (forward and backward); cuDNN picks the fastest
            # algorithms for the fixed crop size on GPUs
            stack.enter_context(matmul_scope(cfg.precision))
            stack.enter_context(cudnn_benchmark(self.device.type == "cuda"))
            writer = stack.enter_context(SummaryWriter(str(self.paths["board"]), purge_step=self.global_step or None)) \
                if ctx.is_main else None
            bar = stack.enter_context(tqdm(total=planned, disable=not show, dynamic_ncols=True, desc="train"))
            if show:
                stack.enter_context(logging_redirect_tqdm(loggers=[log]))  # log lines print above the bar
            try:
                for epoch in range(self.start_epoch, cfg.max_epoch):
                    if not self._train_epoch(epoch, summary, writer, bar):
                        log.info("stopping at --max-steps %d", cfg.max_steps)
                        break
            except KeyboardInterrupt:
                saved = existing_checkpoints(cfg.model_dir)
                raise KeyboardInterrupt(f"continue with --resume {saved[max(saved)]} --resume-step" if saved
                                        else "no checkpoint was saved yet") from None
        return summary


# --------------------------------------------------------------------------- entry point
def train(config: TrainConfig, dataset: Dataset | None = None) -> TrainSummary:
    """Run training as configured: single process, or one DDP rank under torchrun.

    Every user error (flags, split, checkpoint, sizes) is raised as SSMVOSError before the
    process group, the run folder or any training work is started. ``dataset`` replaces the
    split's TrainSet (tests, benchmarks).
    """
    ctx = planned_context(config.device)
    check_config(config, ctx.world_size)
    if dataset is None:
        dataset = build_train_set(config)
    if len(dataset) == 0:
        raise SSMVOSError(f"split {config.split} holds no training samples")
    resume = read_checkpoint(config.resume) if config.resume else None
    if ctx.is_main:
        check_run_folder(config.model_dir, resume.global_step if resume is not None and config.resume_step else None)
    model = build_model(config, resume)
    if resume is None and config.pretrained and ctx.is_main:
        # Rank 0 alone fetches (or reads from the cache) the ImageNet weights, before anything is
        # written; the other ranks receive them when DDP broadcasts rank 0's parameters (they wait
        # at the rendezvous meanwhile, and torchrun stops them if rank 0 fails).
        imagenet_init(model, config.seed)

    paths = run_paths(config.model_dir)
    init_process_group(ctx)
    try:
        if ctx.is_main:
            for key in ("root", "checkpoints", "board"):
                make_dirs(paths[key])
            remove_temporaries(paths["checkpoints"])  # left by a save that was killed
        with train_logger(paths["log"] if ctx.is_main else None, verbose=ctx.is_main) as logger:
            logger.info(f"args: {config.to_dict()}")
            if ctx.is_main:
                write_json_atomic(paths["args"], config.to_dict())
            trainer = Trainer(config, ctx, dataset, model, logger, resume)
            return trainer.fit()
    finally:
        shutdown()
