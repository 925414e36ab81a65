"""The one configuration object: every size, rate, constant and switch the model depends on.

A :class:`Config` defines a model and its whole data path (audio, frames, loudness, warp,
augmentation, mixing, optimisation and the step schedule), so it is saved inside every
checkpoint and as ``config.json`` next to it: a checkpoint alone rebuilds its model and the
exact inputs it expects. Settings of one run on one machine (workers, device, time budget,
how often to save) are not part of it; they live in :class:`RunSettings`.

Two presets are provided:

* ``sop``: the configuration of "The Sound of Pixels" (Zhao et al., ECCV 2018).
* ``small``: a configuration that learns in minutes on a laptop CPU and transfers to scenes it
  has never seen (see docs/config.md and docs/training.md for the measurements behind it).
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

from avsep.errors import AvsepError

# Ways a model can pool the cells of a video or region (the configuration's ``pool``).
MODEL_POOLS = ("vector", "average", "mask")
# ...and at a query, also ``mean``: the mean of the cells' masks (Analysis.separate's ``pool=``).
QUERY_POOLS = MODEL_POOLS + ("mean",)
# How energy maps weigh the mixture's bins (Analysis.energy_map): as the training loss, or by power.
MAP_WEIGHTINGS = ("loss", "power")
# What a learning rate is multiplied by at the end of its cooldown (``lr_cooldown``).
COOLDOWN_FLOOR = 0.02
# Keys that older checkpoints carry but that are now run settings or gone: ignored on load.
# (pair_balance: a training-only weighting, tried and removed; docs/training.md, "Pairs weighted
# by their hardness": its runs' checkpoints still load and score.)
LEGACY_KEYS = {"workers", "checkpoint_minutes", "preset", "pair_balance"}


@dataclass(frozen=True)
class Config:
    # --- audio and spectrogram -------------------------------------------------------------
    sample_rate: int = 11025          # Hz, mono
    audio_len: int = 65535            # samples per clip (about 6 s)
    stft_frame: int = 1022            # STFT window length; n_fft = stft_frame
    stft_hop: int = 256               # STFT hop in samples
    freq_bins: int = 256              # height of the log-frequency warped spectrogram
    log_freq: bool = True             # warp the frequency axis to log scale
    warp_base: float = 21.0           # rows are spaced as warp_base**u, u in [0, 1] (the original's warp)
    target_rms: float = 0.1           # every mixture window is scaled to this RMS before the networks
    # --- frames ----------------------------------------------------------------------------
    frame_rate: float = 8.0           # fps of the extracted frames
    num_frames: int = 3               # frames per clip given to the vision network
    frame_stride: float = 3.0         # seconds between those frames
    img_size: int = 224               # frames are scaled so that their shorter side is this
    # --- networks --------------------------------------------------------------------------
    channels: int = 32                # K: size of the visual vectors and audio feature maps
    resnet_width: int = 64            # channels of the ResNet-18 stem (64 is the standard net)
    visual_stride: int = 16           # output stride of the ResNet: 16 (paper) or 8 (finer grid)
    visual_padding: str = "zeros"     # padding of the ResNet's convolutions: zeros (paper)|reflect|replicate|circular
    # Roll frames half a cell up and left before the ResNet, so that each cell looks at the centre
    # of its square of pixels rather than its top-left corner (SoundOfPixels.visual_grid; needs
    # circular padding, under which the roll adds no border).
    visual_centred: bool = False
    resnet_stages: int = 4            # ResNet stages that run: 4 (paper), 3, or 2 (at stride 8): fewer see less around each cell
    imagenet_pretrained: bool = True  # load torchvision's ImageNet weights (resnet_width=64 only)
    img_activation: str = "sigmoid"   # activation on the visual vectors: sigmoid|relu|none
    # Normalise each channel of the visual logits over the batch and grid before the activation
    # (batch) or not (none, the paper): in training a channel then cannot sit saturated on every
    # cell of every view, where it would stop learning (networks.FrameNet).
    visual_norm: str = "none"
    temporal_pool: str = "max"        # how frames are pooled over time: max|avg
    unet_levels: int = 7              # 5, 6 or 7 down-sampling levels
    unet_channels: int = 64           # channels of the first U-Net level
    sound_activation: str = "none"    # activation on the U-Net output: none|relu|sigmoid
    output_activation: str = "sigmoid"  # activation on the synthesizer output: sigmoid|relu|none
    # --- masks and losses ------------------------------------------------------------------
    mask_type: str = "binary"         # binary|ratio
    loss: str = "bce"                 # bce|l1|l2
    weighted_loss: bool = True        # weight each bin by log(1 + |mixture|)
    mask_threshold: float = 0.5       # binary masks are thresholded here in the paper's scoring protocol
    pixel_loss: float = 0.0           # weight of the per-pixel (multiple-instance) loss beside the pooled one
    av_contrast: float = 0.0          # weight of the audio-visual correspondence loss across the batch
    pixel_loss_pool: int = 4          # the per-pixel loss sees the spectrogram averaged over this many bins a side
    pixel_sparsity: float = 0.0       # weight of the push towards silence shared by all the cells of sounding videos
    # The push above starts once a validation (every val_every steps) reaches this many dB, and
    # stays on (0: from the first step). In one run each: from the first step it delayed the
    # model's start and spoiled its energy maps; added to runs that already separated, it raised
    # pointing (docs/training.md, "Sparsity after take-off").
    sparsity_gate_db: float = 0.0
    # ...and not before this many steps are done (0: from the first step; nothing without
    # pixel_sparsity, so `--set pixel_sparsity=0` turns the preset's stage off). Started after about
    # 2,900 steps, 500 steps of it raised pointing in two paired runs; gates that opened it at
    # steps 1,750 and 2,250 of 20-minute runs did not (docs/training.md, "A second stage").
    sparsity_start: int = 0
    pixel_mil: str = "bin"            # per-pixel loss: each bin's best cell (bin) or each source's best cell (cell)
    # How the cells of a video or of a clicked region combine into one mask wherever the model
    # separates (validation, evaluation, queries): vector (the max of their visual vectors, the
    # paper's), average (the mean of their visual vectors; training pools them so too) or mask
    # (bin by bin, the largest of their masks, as the per-pixel loss trains them).
    pool: str = "vector"
    # --- mixing and augmentation -----------------------------------------------------------
    num_mix: int = 2                  # sources per training mixture (2 to 4)
    gain_db: float = 6.0              # each source gets a random gain in [-gain_db, +gain_db]
    crop_scale: float = 1.0           # random crops keep this fraction of the frame's area, or more
    color_jitter: float = 0.0         # strength of random brightness/contrast/saturation/hue changes
    blur_prob: float = 0.0            # probability of a random Gaussian blur of a view
    grey_prob: float = 0.0            # probability that a view loses its colours (greyscale)
    cutout_prob: float = 0.0          # probability of a grey rectangle over part of a view
    # Training steps over which the view augmentations above grow linearly from none to
    # their full strength (0: full from the first step). A model takes off sooner on easy views.
    aug_ramp: int = 0
    compose_prob: float = 0.0         # probability that a view shows a tile of another video (composed frames)
    texture_prob: float = 0.0         # probability that a silent tile of a composed view is a random texture instead
    eq_db: float = 0.0                # random equalisation of each training source, up to +-eq_db at any frequency
    # --- optimisation ----------------------------------------------------------------------
    optimizer: str = "sgd"            # sgd|adam|adamw (adamw: weight decay decoupled from the gradient)
    lr_frame: float = 1e-4
    lr_sound: float = 1e-3
    lr_synth: float = 1e-3
    lr_milestones: tuple = (40, 60)   # epochs after which every learning rate is multiplied by lr_gamma
    lr_gamma: float = 0.1
    # (first step, last step) over which every learning rate falls linearly to COOLDOWN_FLOOR of
    # itself, and stays there; () for none. A constant rate keeps the weights moving; the fall at
    # the end of a run of known length lets them settle ("warmup-stable-decay" schedules).
    lr_cooldown: tuple = ()
    momentum: float = 0.9             # SGD momentum, or Adam's beta1
    weight_decay: float = 1e-4
    # Validation, best.pt and every checkpoint's model use an exponential moving average of the
    # weights with this decay per step (0: the trained weights themselves); training is unchanged.
    ema_decay: float = 0.0
    batch_size: int = 16
    epochs: int = 100                 # an epoch is `epoch_size` mixtures
    epoch_size: int = 2000
    # --- schedule --------------------------------------------------------------------------
    val_every: int = 500              # validate, checkpoint and maybe update best.pt every this many steps
    val_pairs: int = 32               # fixed validation mixtures scored for best.pt
    seed: int = 1234
    # Not called `preset`: that name is the classmethod below, which a field would clash with.
    preset_name: str = "sop"          # the preset this configuration started from (informative)

    # --- derived sizes ---------------------------------------------------------------------
    @property
    def n_fft(self) -> int:
        return self.stft_frame

    @property
    def linear_bins(self) -> int:
        """Frequency bins of the linear STFT."""
        return self.stft_frame // 2 + 1

    @property
    def time_frames(self) -> int:
        """STFT frames of one clip (centred STFT)."""
        return self.audio_len // self.stft_hop + 1

    @property
    def frame_gap(self) -> int:
        """Frames (at ``frame_rate``) between the frames given to the vision network."""
        return max(1, round(self.frame_stride * self.frame_rate))

    @property
    def grid_size(self) -> int:
        """Cells along each side of the visual grid of an ``img_size`` square view."""
        return math.ceil(self.img_size / self.visual_stride)

    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.epoch_size // self.batch_size)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    # --- (de)serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Config":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known - LEGACY_KEYS)
        if unknown:
            raise AvsepError(f"unknown configuration key(s): {', '.join(unknown)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in known}
        return cls(**values).validated()

    @classmethod
    def preset(cls, name: str) -> "Config":
        if name not in PRESETS:
            raise AvsepError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
        return cls(**PRESETS[name], preset_name=name).validated()

    @classmethod
    def load(cls, path: str | Path) -> "Config":
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as err:
            raise AvsepError(f"{path}: cannot read configuration: {err}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def with_overrides(self, overrides: Iterable[str]) -> "Config":
        """Apply ``key=value`` strings, converting each value to the key's type."""
        values = self.to_dict()
        kinds = {f.name: type(getattr(self, f.name)) for f in dataclasses.fields(self)}
        for item in overrides:
            key, sep, raw = item.partition("=")
            key = key.strip().replace("-", "_")
            if not sep:
                raise AvsepError(f"override {item!r}: expected KEY=VALUE")
            if key not in kinds:
                raise AvsepError(f"override {item!r}: unknown configuration key {key!r}")
            values[key] = _parse_value(key, raw.strip(), kinds[key])
        return Config.from_dict(values)

    def replace(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **changes).validated()

    def differences(self, other: "Config") -> list[str]:
        """Names of the keys whose values differ from ``other``'s, sorted."""
        mine, theirs = self.to_dict(), other.to_dict()
        return sorted(k for k in mine if mine[k] != theirs[k])

    def validated(self) -> "Config":
        """Raise :class:`AvsepError` naming the key if a value is out of range."""
        for ok, message in self._checks():
            if not ok:
                raise AvsepError(f"invalid configuration: {message}")
        return self

    def _checks(self) -> list[tuple[bool, str]]:
        activations = ("sigmoid", "relu", "none")
        return [
            (2 <= self.num_mix <= 4, "num_mix must be 2, 3 or 4"),
            (self.unet_levels in (5, 6, 7), "unet_levels must be 5, 6 or 7"),
            (self.visual_stride in (8, 16), "visual_stride must be 8 or 16"),
            (self.resnet_stages in (3, 4) or (self.resnet_stages == 2 and self.visual_stride == 8),
             "resnet_stages must be 3 or 4, or 2 with visual_stride=8"),
            (self.visual_padding in ("zeros", "reflect", "replicate", "circular"),
             "visual_padding must be zeros, reflect, replicate or circular"),
            (self.mask_type in ("binary", "ratio"), "mask_type must be binary or ratio"),
            (self.pixel_mil in ("bin", "cell"), "pixel_mil must be bin or cell"),
            (self.pool in MODEL_POOLS, "pool must be vector, average or mask"),
            (not (self.pixel_sparsity and self.output_activation == "none"),
             "pixel_sparsity needs bounded masks: output_activation sigmoid or relu"),
            (self.loss in ("bce", "l1", "l2"), "loss must be bce, l1 or l2"),
            (self.optimizer in ("sgd", "adam", "adamw"), "optimizer must be sgd, adam or adamw"),
            (self.img_activation in activations, "img_activation must be sigmoid, relu or none"),
            (self.visual_norm in ("none", "batch"), "visual_norm must be none or batch"),
            (self.sound_activation in activations, "sound_activation must be sigmoid, relu or none"),
            (self.output_activation in activations, "output_activation must be sigmoid, relu or none"),
            (self.temporal_pool in ("max", "avg"), "temporal_pool must be max or avg"),
            (not (self.loss == "bce" and self.output_activation != "sigmoid"), "loss=bce needs output_activation=sigmoid"),
            (self.stft_frame % 2 == 0 and self.stft_hop > 0, "stft_frame must be even and stft_hop positive"),
            (self.time_frames % 2 ** self.unet_levels == 0,
             f"audio_len//stft_hop+1 = {self.time_frames} time frames must be divisible by 2**unet_levels"),
            (self.freq_bins % 2 ** self.unet_levels == 0, "freq_bins must be divisible by 2**unet_levels"),
            (self.num_frames >= 1 and self.img_size >= 32, "num_frames must be >= 1 and img_size >= 32"),
            (self.img_size % self.visual_stride == 0, "img_size must be a multiple of visual_stride"),
            (not self.visual_centred or self.visual_padding == "circular",
             "visual_centred needs visual_padding=circular (a roll under zero padding moves the "
             "border): add visual_centred=false"),
            (self.channels >= 1 and self.batch_size >= 1, "channels and batch_size must be positive"),
            (not (self.imagenet_pretrained and self.resnet_width != 64),
             "imagenet_pretrained needs resnet_width=64 (the ImageNet net)"),
            (self.target_rms > 0 and self.warp_base > 1, "target_rms must be positive and warp_base above 1"),
            (0 < self.crop_scale <= 1, "crop_scale must be in (0, 1]"),
            (all(0 <= p <= 1 for p in (self.blur_prob, self.cutout_prob, self.compose_prob, self.grey_prob, self.texture_prob)),
             "blur_prob, cutout_prob, compose_prob, grey_prob and texture_prob must be in [0, 1]"),
            (min(self.color_jitter, self.pixel_loss, self.pixel_sparsity, self.eq_db, self.av_contrast) >= 0,
             "color_jitter, pixel_loss, pixel_sparsity, eq_db and av_contrast must be >= 0"),
            (self.pixel_loss_pool >= 1 and self.freq_bins % self.pixel_loss_pool == 0
             and self.time_frames % self.pixel_loss_pool == 0, "pixel_loss_pool must divide freq_bins and the time frames"),
            (all(isinstance(m, int) and m > 0 for m in self.lr_milestones), "lr_milestones must be positive epochs"),
            (not self.lr_cooldown or (len(self.lr_cooldown) == 2 and all(isinstance(s, int) for s in self.lr_cooldown)
                                      and 0 <= self.lr_cooldown[0] < self.lr_cooldown[1]),
             "lr_cooldown must be () or two steps, first < last (--set lr_cooldown=1700,2500)"),
            (0 <= self.ema_decay < 1, "ema_decay must be in [0, 1)"),
            (self.aug_ramp >= 0, "aug_ramp must be >= 0 steps"),
            (self.sparsity_gate_db >= 0, "sparsity_gate_db must be >= 0 dB"),
            (self.sparsity_start >= 0, "sparsity_start must be >= 0 steps"),
            (not self.sparsity_gate_db or (self.pixel_sparsity and self.pixel_loss),
             "sparsity_gate_db gates pixel_sparsity: set pixel_sparsity and pixel_loss above 0 too"),
            (self.val_every >= 1 and self.epochs >= 1 and self.epoch_size >= 1,
             "val_every, epochs and epoch_size must be positive"),
        ]


@dataclass
class RunSettings:
    """How one run uses one machine; never saved in a checkpoint (another machine may resume it).

    Attributes:
        workers: data-loader processes.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``...
        max_minutes: an outer bound on this invocation's training time (validation excluded);
            decisions (validation, best.pt, stopping) are otherwise taken by steps.
        max_steps: stop at this global step (None: at the end of the configured epochs).
        save_minutes: also write ``last.pt`` (for crash safety only) at least this often.
        progress: show a progress bar.
        precision: ``fp32``, ``bf16`` or ``fp16`` autocast for the training step (fp16 with a
            gradient scaler), or ``auto`` (bf16 on a CPU with native bfloat16, else fp32); where
            the device cannot, training falls back to fp32 with a note.
        compile: ``torch.compile`` the training step (CUDA only; eager with a note on CPU).
        sync_bn: synchronise BatchNorm statistics across processes (SyncBatchNorm; CUDA only).
        dist_timeout_minutes: how long a process waits in a collective for the others before
            the job fails (a dead or stuck process ends the job instead of hanging it).
        shuffle_buffer: videos each loader stream keeps in memory to mix from (tar shards only).
    """
    workers: int = 1
    device: str = "auto"
    max_minutes: Optional[float] = None
    max_steps: Optional[int] = None
    save_minutes: float = 5.0
    progress: bool = True
    precision: str = "fp32"
    compile: bool = False
    sync_bn: bool = False
    dist_timeout_minutes: float = 30.0
    shuffle_buffer: int = 64


def _plain(value: Any) -> Any:
    """Tuples become lists, so the dict is JSON and ``weights_only`` friendly."""
    return list(value) if isinstance(value, tuple) else value


def _parse_value(key: str, raw: str, kind: type) -> Any:
    try:
        if kind is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind is tuple:
            return [int(v) for v in raw.split(",") if v.strip()]
        return kind(float(raw)) if kind is int and "." in raw else kind(raw)
    except ValueError:
        what = "comma-separated integers" if kind is tuple else f"a {kind.__name__}"
        raise AvsepError(f"override {key}={raw!r}: expected {what}") from None


PRESETS: dict[str, dict[str, Any]] = {
    # The paper's MUSIC configuration (the defaults above).
    "sop": {},
    # Learns in minutes on 2 CPU cores: 1.5 s clips, a 128x64 log-frequency spectrogram, one
    # frame, a quarter-width ResNet-18 and a narrow 5-level U-Net, trained with Adam and
    # separating with a moving average of its weights. Composed
    # frames with the per-pixel loss, and circular padding in the ResNet, so that each cell of the
    # grid stands for what it shows (what clicks need) instead of the video's identity being kept
    # along the frame's zero-padded border: see the ablation in docs/training.md.
    "small": dict(
        # 1.5 s clips: a step costs about 1.4 times less than with 3 s ones and learns about as
        # much, so 20 minutes trained 3,450 steps instead of 2,500 (before the wider U-Net
        # below); on both draws of the quickstart's data that met issue 7's three targets where
        # 3 s clips met them on one (docs/training.md, "Clips of 1.5 seconds").
        audio_len=16383, freq_bins=128,
        num_frames=1, img_size=112,
        channels=16, resnet_width=16, imagenet_pretrained=False,
        # A U-Net of 24 channels at its first level (not 16) and the vision network learning twice
        # as fast as the others: alone, each stayed within the spread of training seeds; together
        # they raised held-out solo pairs and clicks on both draws of the quickstart's data and on
        # five other instruments (one run each; pointing +5, -2 and 0 points), for a step about
        # 1.15 times dearer (docs/training.md, "A wider U-Net with a faster vision network").
        unet_levels=5, unet_channels=24,
        compose_prob=0.5, pixel_loss=1.0, visual_padding="circular",
        optimizer="adam", lr_frame=2e-3, lr_sound=1e-3, lr_synth=1e-3, weight_decay=0.0,
        lr_milestones=(), batch_size=16, epoch_size=1000, val_every=250, val_pairs=24,
        # Checkpoints hold a moving average of the weights (about the last 200 steps): at the
        # preset's constant learning rate it clicked and validated better than the raw weights.
        ema_decay=0.995,
        # Random equalisation of every training source: on held-out scenes (a soundfont never
        # heard) it raised solo pairs by 2.0 and 1.5 dB in two paired runs (docs/training.md).
        eq_db=6.0,
        # Visual logits normalised per channel (in training a channel cannot sit saturated on
        # every cell of every view, where it would stop learning), and random crops and colour
        # jitter so that the vision network cannot fit a training video by its background:
        # together they made a data draw that never learnt take off and transfer (held-out solo
        # pairs -0.2 -> +4.3 dB; docs/training.md).
        visual_norm="batch", crop_scale=0.5, color_jitter=0.3,
        # After 2,850 steps (about 17 minutes of training on 2 cores in bf16), the push towards
        # silence shared by the cells of sounding videos: in two paired runs, 500 steps of it
        # raised pointing on 48 held-out duets by 15 and 9 points (docs/training.md).
        pixel_sparsity=1.0, sparsity_start=2850,
        # Each cell looks at the centre of its square, where the composed tiles' owner maps,
        # clicks and maps place it, not at its corner: on 48 held-out duets pointing rose from
        # 67% to 71% and held-out solo pairs from +7.65 to +8.44 dB (docs/training.md).
        visual_centred=True,
        # Half of the silent tiles of composed views show random textures rather than other
        # videos, so that colours, shapes and patterns alone learn to be silent: on the
        # quickstart's data the energy peak fell on a sounding player in 92% and 77% of held-out
        # duet windows (two training seeds) against 70% and 66% without; on a second draw 77%
        # against 83% (docs/training.md, "Random textures as silent tiles").
        texture_prob=0.5,
        # Each source's pooled visual vector must match the sound network's features of its own
        # bins better than those of another label's source (a fifth of the mask loss's weight):
        # the mask loss alone never told flute from violin (-0.4 to +0.1 dB in six runs). On
        # three runs of the quickstart's data the energy peak fell on a sounding player in 96, 92
        # and 92% of held-out duet windows (against 92, 77 and 77%), flute + violin gained +6.8,
        # +7.8 and +2.3 dB, and solo pairs stayed above 7 dB (docs/training.md).
        av_contrast=0.2,
    ),
}
