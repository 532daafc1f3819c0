"""MiniFASNet in PyTorch, built from its weights alone, exported to ONNX with one live logit.

In: a MiniFASNet ``.pth`` state dict (Minivision's Silent-Face-Anti-Spoofing, Apache-2.0;
``models/sources/minifasnet/``).  Out: an ONNX file taking NCHW float32 ``[1, 3, 80, 80]``
(BGR, raw 0-255, as the makers feed it) and giving ``[1, 1]``: the live logit
``log(p_real / (1 - p_real))`` of the network's 3-class softmax (class 1 is real), so the
device's liveness cards (one logit) hold it.

The network is written here from what the weights say, not copied: every layer's channels
come from its tensors' shapes and the block kinds from their names.  What the names do not
say is fixed by the architecture: the stem and the three bottlenecks between stages
(``conv1``, ``conv_23``, ``conv_34``, ``conv_45``) halve the resolution; every depthwise
kernel is 3x3 with padding 1 except the last (``conv_6_dw``, its own size, no padding);
residual blocks add their input back, and a block with ``se_module`` rescales its channels
first (squeeze and excitation).

Runs in the torch venv (``make minifasnet``), which has nothing of facegate: this file
imports only torch and the standard library.

    python tools/liveness/minifasnet_net.py WEIGHTS.pth OUT.onnx
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from typing import Any

import torch
from torch import nn

# Stages in the order a crop goes through them; these four halve the resolution.
STAGES = ("conv1", "conv2_dw", "conv_23", "conv_3", "conv_34", "conv_4", "conv_45", "conv_5")
STRIDE_2 = {"conv1", "conv_23", "conv_34", "conv_45"}
REAL_CLASS = 1


def _weights(sd: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    n = len(prefix)
    return {k[n:]: v for k, v in sd.items() if k.startswith(prefix)}


class ConvBN(nn.Sequential):
    """conv (no bias) -> batch norm [-> PReLU]: the network's one building block."""

    def __init__(self, sd: dict[str, torch.Tensor], *, stride: int = 1, padding: int | None = None):
        w = sd["conv.weight"]
        out_c, in_per_group, kh, _ = w.shape
        # one input channel per filter: a depthwise convolution (the image itself has three)
        groups = out_c if in_per_group == 1 else 1
        in_c = out_c if groups > 1 else in_per_group
        pad = kh // 2 if padding is None else padding
        layers: list[tuple[str, nn.Module]] = [
            ("conv", nn.Conv2d(in_c, out_c, kh, stride, pad, groups=groups, bias=False)),
            ("bn", nn.BatchNorm2d(out_c)),
        ]
        if "prelu.weight" in sd:
            layers.append(("prelu", nn.PReLU(out_c)))
        super().__init__(OrderedDict(layers))


class SqueezeExcite(nn.Module):
    def __init__(self, sd: dict[str, torch.Tensor]):
        super().__init__()
        mid, ch = sd["fc1.weight"].shape[:2]
        self.fc1 = nn.Conv2d(ch, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.fc2 = nn.Conv2d(mid, ch, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        s = torch.relu(self.bn1(self.fc1(s)))
        return x * torch.sigmoid(self.bn2(self.fc2(s)))


class Bottleneck(nn.Module):
    """1x1 expand -> 3x3 depthwise -> 1x1 project (linear) [-> squeeze-excite] [+ input]."""

    def __init__(self, sd: dict[str, torch.Tensor], *, stride: int, residual: bool):
        super().__init__()
        self.conv = ConvBN(_weights(sd, "conv."))
        self.conv_dw = ConvBN(_weights(sd, "conv_dw."), stride=stride)
        self.project = ConvBN(_weights(sd, "project."))
        self.se_module = (
            SqueezeExcite(_weights(sd, "se_module.")) if "se_module.fc1.weight" in sd else None
        )
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.conv_dw(self.conv(x)))
        if self.se_module is not None:
            y = self.se_module(y)
        return x + y if self.residual else y


class Stack(nn.Module):
    """A stage of residual bottlenecks (``<stage>.model.<i>.``)."""

    def __init__(self, sd: dict[str, torch.Tensor]):
        super().__init__()
        count = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("model."))
        self.model = nn.Sequential(
            *(
                Bottleneck(_weights(sd, f"model.{i}."), stride=1, residual=True)
                for i in range(count)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _stage(sd: dict[str, torch.Tensor], name: str) -> nn.Module:
    stride = 2 if name in STRIDE_2 else 1
    if any(k.startswith("model.") for k in sd):
        return Stack(sd)
    if "conv_dw.conv.weight" in sd:
        return Bottleneck(sd, stride=stride, residual=False)
    return ConvBN(sd, stride=stride)


class MiniFASNet(nn.Module):
    """The network of a MiniFASNet state dict; forward gives the 3 class logits."""

    def __init__(self, sd: dict[str, torch.Tensor]):
        super().__init__()
        for name in STAGES:
            self.add_module(name, _stage(_weights(sd, name + "."), name))
        self.conv_6_sep = ConvBN(_weights(sd, "conv_6_sep."))
        self.conv_6_dw = ConvBN(_weights(sd, "conv_6_dw."), padding=0)
        emb, flat = sd["linear.weight"].shape
        self.linear = nn.Linear(flat, emb, bias=False)
        self.bn = nn.BatchNorm1d(emb)
        self.prob = nn.Linear(emb, sd["prob.weight"].shape[0], bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in STAGES:
            x = getattr(self, name)(x)
        x = self.conv_6_dw(self.conv_6_sep(x)).flatten(1)
        return self.prob(self.bn(self.linear(x)))


class LiveLogit(nn.Module):
    """The class logits -> one live logit, log(p_real / (1 - p_real)) of their softmax."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net(x)
        others = torch.cat([z[:, :REAL_CLASS], z[:, REAL_CLASS + 1 :]], dim=1)
        return z[:, REAL_CLASS : REAL_CLASS + 1] - torch.logsumexp(others, dim=1, keepdim=True)


def load(path: str) -> MiniFASNet:
    """The network with the weights of ``path`` (a state dict, DataParallel's ``module.`` or not)."""
    sd: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    net = MiniFASNet(sd)
    # strict: every tensor of the file has its place, and every place its tensor
    net.load_state_dict(sd, strict=True)
    return net.eval()


def export(path: str, out: str, size: int = 80) -> None:
    model = LiveLogit(load(path)).eval()
    with torch.no_grad():
        torch.onnx.export(
            model,
            (torch.zeros(1, 3, size, size),),
            out,
            dynamo=False,
            opset_version=13,
            input_names=["input"],
            output_names=["live_logit"],
        )


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: minifasnet_net.py WEIGHTS.pth OUT.onnx")
    export(sys.argv[1], sys.argv[2])
