"""Stage 3 of the data path: the three Sound-of-Pixels networks.

* :class:`FrameNet`, a ResNet-18 dilated to stride 16, turns frames into a grid of K-dimensional
  visual vectors (14x14 for 224x224 frames).
* :class:`SoundNet`, a U-Net, turns the log-magnitude mixture spectrogram into K feature maps.
* :class:`Synthesizer`, a learned scaled inner product plus bias, combines one visual vector
  with the K feature maps into a spectrogram mask (before its output activation).
"""
from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avsep.errors import AvsepError

log = logging.getLogger("avsep")

ACTIVATIONS = {"sigmoid": torch.sigmoid, "relu": torch.relu, "none": lambda x: x}


def wrap(x: Tensor, rows: int, cols: int) -> Tensor:
    """Circular padding of the last two axes by concatenation: the same values as
    ``F.pad(x, (cols, cols, rows, rows), mode="circular")`` (gradients equal up to float summation
    order), but measured about 1.3x faster through
    the whole FrameNet's forward and backward on channels-last CPU tensors
    (benchmarks/bench_padding.py)."""
    if rows > x.shape[-2] or cols > x.shape[-1]:
        raise ValueError(f"circular padding of {rows}x{cols} is larger than the {tuple(x.shape[-2:])} input")
    if rows:
        x = torch.cat([x[..., -rows:, :], x, x[..., :rows, :]], dim=-2)
    if cols:
        x = torch.cat([x[..., -cols:], x, x[..., :cols]], dim=-1)
    return x


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters and names) that pads circularly with :func:`wrap`."""

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if self.padding_mode != "circular":
            return super()._conv_forward(input, weight, bias)
        cols, _, rows, _ = self._reversed_padding_repeated_twice
        return F.conv2d(wrap(input, rows, cols), weight, bias, self.stride, 0, self.dilation, self.groups)


class BasicBlock(nn.Module):
    """The ResNet basic block, with torchvision's parameter names so ImageNet weights load."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: tuple[int, int] = (1, 1)):
        super().__init__()
        self.conv1 = Conv2d(inplanes, planes, 3, stride, padding=dilation[0], dilation=dilation[0], bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = Conv2d(planes, planes, 3, 1, padding=dilation[1], dilation=dilation[1], bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


NORMED_SIGMOID_SHIFT = -2.0  # added to normalised logits before a sigmoid: cells start near 0.12


class FrameNet(nn.Module):
    """ResNet-18 with layer4 dilated instead of strided (output stride 16), then a 3x3 conv to K.

    Args:
        channels: K, the size of each visual vector.
        width: channels of the stem; 64 is the standard ResNet-18 (the only width with ImageNet weights).
        activation: applied to the visual vectors: sigmoid, relu or none.
        temporal_pool: how the T frames of a clip are pooled: max or avg.
        stride: output stride, 16 (the paper) or 8.
        padding: padding of the convolutions: zeros (the paper, and what ImageNet weights were
            trained with), reflect, replicate or circular. Zero padding tells every cell where the
            frame's border is; trained from scratch with a max over the grid, the network can then
            carry a whole video's identity in its border cells and leave the others constant, which
            separates pooled mixtures but points nowhere. Circular padding leaves no border to find.
        stages: how many of the ResNet's four stages run (2, 3 or 4; 4 is the paper's). Fewer
            stages give each cell a smaller receptive field (about 115 pixels after two, against
            some 470 after four), so that a cell describes what is near it rather than the whole
            frame. Two stages end at stride 8.
        norm: "batch" normalises every channel of the logits over the batch and the grid, with no
            learned scale or shift, before the activation; "none" (the paper) does not. Trained
            from scratch, a sigmoid channel can otherwise saturate for every video (0 or 1 after
            the max over the grid), pass no gradient, and stay so: whole instruments then share
            one visual vector for good. Normalised, a channel's training logits keep unit
            variance, so it cannot sit saturated on every cell of every view; that its max over
            the grid still differs between videos is measured, not guaranteed
            (benchmarks/probe_codes.py). In eval mode the running statistics are used.
    """

    def __init__(self, channels: int = 32, width: int = 64, activation: str = "sigmoid", temporal_pool: str = "max",
                 stride: int = 16, padding: str = "zeros", stages: int = 4, norm: str = "none"):
        super().__init__()
        w = width
        self.conv1 = Conv2d(3, w, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU(inplace=True)
        # With a padding other than zeros the stem's max-pool pads the same way (in grid()).
        self.maxpool = nn.MaxPool2d(3, 2, 1 if padding == "zeros" else 0)
        self.padding = padding
        self.layer1 = nn.Sequential(BasicBlock(w, w), BasicBlock(w, w))
        self.layer2 = nn.Sequential(BasicBlock(w, 2 * w, 2), BasicBlock(2 * w, 2 * w))
        # Dilation instead of striding keeps the grid fine: stride 16 (the paper: 14x14 vectors
        # for a 224 frame) dilates layer4; stride 8 dilates layer3 as well, for small objects.
        if stride == 16:
            self.layer3 = nn.Sequential(BasicBlock(2 * w, 4 * w, 2), BasicBlock(4 * w, 4 * w))
            self.layer4 = nn.Sequential(BasicBlock(4 * w, 8 * w, 1, (1, 2)), BasicBlock(8 * w, 8 * w, 1, (2, 2)))
        elif stride == 8:
            self.layer3 = nn.Sequential(BasicBlock(2 * w, 4 * w, 1, (1, 2)), BasicBlock(4 * w, 4 * w, 1, (2, 2)))
            self.layer4 = nn.Sequential(BasicBlock(4 * w, 8 * w, 1, (2, 4)), BasicBlock(8 * w, 8 * w, 1, (4, 4)))
        else:
            raise AvsepError(f"visual stride {stride}: must be 8 or 16")
        if stages not in (2, 3, 4) or (stages == 2 and stride != 8):
            raise AvsepError(f"{stages} ResNet stages at stride {stride}: use 3 or 4 stages, or 2 at stride 8")
        # Stages that do not run are identities, so the parameter names of those that do stay
        # torchvision's (ImageNet weights load into them).
        if stages < 4:
            self.layer4 = nn.Identity()
        if stages < 3:
            self.layer3 = nn.Identity()
        self.fc = Conv2d(w * 2 ** (stages - 1), channels, 3, padding=1)
        self.norm = nn.BatchNorm2d(channels, affine=False) if norm == "batch" else None
        self.activation = activation
        self.temporal_pool = temporal_pool
        self._init_weights()
        for module in self.modules():
            if isinstance(module, nn.Conv2d) and module.kernel_size != (1, 1):
                module.padding_mode = padding  # pad, then an unpadded convolution: same weights

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        # The projection to K feeds a sigmoid: with the ReLU-layer init above its outputs have a
        # standard deviation of about 4 and most sigmoids start saturated, so little gradient
        # reaches the ResNet. PyTorch's default init starts them near 0.5, where they learn.
        self.fc.reset_parameters()
        if self.activation == "sigmoid":
            # Start the sigmoids low (about 0.12): the grid is max-pooled, and a max of many
            # sigmoids near 0.5 sits near 1, where the sigmoid passes almost no gradient.
            nn.init.constant_(self.fc.bias, -2.0)

    def load_imagenet(self, allow_random: bool = False) -> bool:
        """Load torchvision's ImageNet ResNet-18 weights (cached, or downloaded if possible).

        Returns True if they were loaded. When they can't be had, raises :class:`AvsepError`
        explaining why, unless ``allow_random`` is set, in which case it logs and keeps the
        random initialisation.
        """
        from torchvision.models import ResNet18_Weights

        try:
            state = ResNet18_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
        except Exception as err:  # URLError, OSError, hash mismatch...: all mean "not available"
            reason = f"cannot load torchvision's ImageNet ResNet-18 weights ({type(err).__name__}: {err})"
            if not allow_random:
                raise AvsepError(f"{reason}; put resnet18-f37072fd.pth in $TORCH_HOME/hub/checkpoints, "
                                 "or pass --random-init (imagenet_pretrained=false) to train from scratch") from None
            log.warning("%s; continuing with random initialisation as asked", reason)
            return False
        skipped = tuple(f"{name}." for name in ("layer3", "layer4") if isinstance(getattr(self, name), nn.Identity))
        state = {k: v for k, v in state.items() if not k.startswith(("fc.",) + skipped)}
        missing, unexpected = self.load_state_dict(state, strict=False)
        if unexpected or any(not k.startswith(("fc.", "norm.")) for k in missing):  # ImageNet has no K-channel head
            raise AvsepError(f"ImageNet weights do not match the ResNet-18: missing {missing}, unexpected {unexpected}")
        return True

    def grid(self, frames: Tensor) -> Tensor:
        """Per-frame visual vectors: (B, 3, T, H, W) -> (B, K, T, H/16, W/16), before activation."""
        batch, _, num, height, width = frames.shape
        x = frames.transpose(1, 2).reshape(batch * num, 3, height, width)
        x = self.relu(self.bn1(self.conv1(x)))
        if self.padding == "circular":
            x = wrap(x, 1, 1)
        elif self.padding != "zeros":
            x = F.pad(x, (1, 1, 1, 1), mode=self.padding)
        x = self.maxpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.fc(x)
        if self.norm is not None:
            # Unit-variance logits shifted down as the fc bias starts them (see _init_weights),
            # so that the max over the grid does not start near 1.
            x = self.norm(x) + (NORMED_SIGMOID_SHIFT if self.activation == "sigmoid" else 0.0)
        return x.reshape(batch, num, *x.shape[1:]).transpose(1, 2)

    def forward(self, frames: Tensor) -> Tensor:
        """Pooled over time and activated: (B, 3, T, H, W) -> (B, K, h, w)."""
        grid = self.grid(frames)
        pooled = grid.amax(dim=2) if self.temporal_pool == "max" else grid.mean(dim=2)
        return ACTIVATIONS[self.activation](pooled)


class SoundNet(nn.Module):
    """A pix2pix-style U-Net: log magnitude (B, 1, F, T) -> K feature maps (B, K, F, T).

    Down-sampling uses 4x4 stride-2 convolutions; up-sampling uses bilinear x2 then 3x3
    convolutions, with skip connections by concatenation. F and T must be divisible by
    2**levels.
    """

    def __init__(self, channels: int = 32, levels: int = 7, base: int = 64, activation: str = "none"):
        super().__init__()
        widths = [base * min(2 ** i, 8) for i in range(levels)]
        self.input_norm = nn.BatchNorm2d(1)
        self.down = nn.ModuleList()
        self.up = nn.ModuleList()
        for i in range(levels):
            c_in = 1 if i == 0 else widths[i - 1]
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2, inplace=True)]
            layers.append(nn.Conv2d(c_in, widths[i], 4, 2, 1, bias=(i in (0, levels - 1))))
            if 0 < i < levels - 1:
                layers.append(nn.BatchNorm2d(widths[i]))
            self.down.append(nn.Sequential(*layers))
        for i in reversed(range(levels)):
            # The innermost level sees only its own output; the others see the skip concatenation.
            c_in = widths[i] if i == levels - 1 else 2 * widths[i]
            c_out = channels if i == 0 else widths[i - 1]
            layers = [nn.ReLU(inplace=True), nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                      nn.Conv2d(c_in, c_out, 3, 1, 1, bias=(i == 0))]
            if i > 0:
                layers.append(nn.BatchNorm2d(c_out))
            self.up.append(nn.Sequential(*layers))
        self.levels = levels
        self.activation = activation

    def forward(self, log_mag: Tensor) -> Tensor:
        height, width = log_mag.shape[-2:]
        step = 2 ** self.levels
        if height % step or width % step:
            raise AvsepError(f"spectrogram of {height}x{width} is not divisible by 2**unet_levels = {step}")
        skips = []
        x = self.input_norm(log_mag)
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = skips.pop()
        for block in self.up:
            x = block(x)
            if skips:
                x = torch.cat([x, skips.pop()], dim=1)
        return ACTIVATIONS[self.activation](x)


class Synthesizer(nn.Module):
    """Mask logits from visual vectors and audio features: sum_k v_k * s_k * a_k + b.

    The map is linear in the visual vector, so averaging logits over pixels equals the logits
    of the averaged vector.
    """

    def __init__(self, channels: int = 32):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, vectors: Tensor, sound: Tensor) -> Tensor:
        """Pooled form: vectors (B, K), sound (B, K, F, T) -> logits (B, F, T)."""
        return torch.einsum("bk,bkft->bft", vectors * self.scale, sound) + self.bias

    def per_pixel(self, grid: Tensor, sound: Tensor) -> Tensor:
        """Per-pixel form: grid (B, K, h, w), sound (B, K, F, T) -> logits (B, h, w, F, T)."""
        return torch.einsum("bkhw,bkft->bhwft", grid * self.scale.view(1, -1, 1, 1), sound) + self.bias

    def per_cell(self, vectors: Tensor, sound: Tensor) -> Tensor:
        """Many vectors against one sound: vectors (B, C, K), sound (B, K, F, T) -> logits (B, C, F, T)."""
        return torch.einsum("bck,bkft->bcft", vectors * self.scale, sound) + self.bias
