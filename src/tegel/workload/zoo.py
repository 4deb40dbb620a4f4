"""Vision networks in plain torch.nn, layer for layer torchvision's, with seeded random weights.

ResNet-18/50 (He et al. 2015, torchvision's v1.5: the stride on the 3x3 conv), MobileNetV2
(Sandler et al. 2018, width 1.0) and ViT-B/16 (Dosovitskiy et al. 2020). torchvision itself
is not a dependency (its wheels pin other torch builds), and torch is imported inside the
builders so that `import tegel` does not load it; parameter counts equal torchvision's
(tests/workload/test_zoo.py checks them and the MACs of tegel's graphs against the published
figures). Batch-norm running statistics are randomised too, so folding them is exercised.
"""

from __future__ import annotations

from collections.abc import Callable

from tegel.errors import TegelError


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
             act: str | None = "relu"):
    from torch import nn
    layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if act == "relu":
        layers.append(nn.ReLU(inplace=True))
    elif act == "relu6":
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


def _resnet(block: str, layers: tuple[int, ...], num_classes: int = 1000):
    import torch
    from torch import nn
    expansion = 1 if block == "basic" else 4

    class Block(nn.Module):
        def __init__(self, cin: int, width: int, stride: int) -> None:
            super().__init__()
            cout = width * expansion
            if block == "basic":
                self.body = nn.Sequential(_conv_bn(cin, width, 3, stride),
                                          _conv_bn(width, cout, 3, act=None))
            else:
                self.body = nn.Sequential(_conv_bn(cin, width, 1), _conv_bn(width, width, 3, stride),
                                          _conv_bn(width, cout, 1, act=None))
            self.down = (_conv_bn(cin, cout, 1, stride, act=None)
                         if stride != 1 or cin != cout else nn.Identity())
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            return self.relu(self.body(x) + self.down(x))

    class ResNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(_conv_bn(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1))
            blocks, cin = [], 64
            for i, n in enumerate(layers):
                width = 64 * 2**i
                for j in range(n):
                    blocks.append(Block(cin, width, 2 if i > 0 and j == 0 else 1))
                    cin = width * expansion
            self.blocks = nn.Sequential(*blocks)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(cin, num_classes)

        def forward(self, x):
            return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))

    return ResNet()


def _mobilenet_v2(num_classes: int = 1000):
    import torch
    from torch import nn
    settings = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1))  # (expansion t, channels c, repeats n, stride s)

    class Inverted(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int, t: int) -> None:
            super().__init__()
            hidden = cin * t
            layers = [] if t == 1 else [_conv_bn(cin, hidden, 1, act="relu6")]
            layers += [_conv_bn(hidden, hidden, 3, stride, groups=hidden, act="relu6"),
                       _conv_bn(hidden, cout, 1, act=None)]
            self.body = nn.Sequential(*layers)
            self.residual = stride == 1 and cin == cout

        def forward(self, x):
            return x + self.body(x) if self.residual else self.body(x)

    class MobileNetV2(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers, cin = [_conv_bn(3, 32, 3, 2, act="relu6")], 32
            for t, c, n, s in settings:
                for i in range(n):
                    layers.append(Inverted(cin, c, s if i == 0 else 1, t))
                    cin = c
            layers.append(_conv_bn(cin, 1280, 1, act="relu6"))
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

        def forward(self, x):
            x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
            return self.classifier(torch.flatten(x, 1))

    return MobileNetV2()


def _vit(image: int = 224, patch: int = 16, layers: int = 12, hidden: int = 768, heads: int = 12,
         mlp: int = 3072, num_classes: int = 1000):
    import torch
    from torch import nn
    F = nn.functional

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(hidden, eps=1e-6), nn.LayerNorm(hidden, eps=1e-6)
            self.q, self.k, self.v = (nn.Linear(hidden, hidden) for _ in range(3))
            self.out = nn.Linear(hidden, hidden)
            self.mlp = nn.Sequential(nn.Linear(hidden, mlp), nn.GELU(), nn.Linear(mlp, hidden))

        def forward(self, x):
            b, n, _ = x.shape
            y = self.ln1(x)
            q, k, v = (p(y).reshape(b, n, heads, hidden // heads).transpose(1, 2)
                       for p in (self.q, self.k, self.v))
            a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, hidden)
            x = x + self.out(a)
            return x + self.mlp(self.ln2(x))

    class ViT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.patch = nn.Conv2d(3, hidden, patch, patch)
            self.cls = nn.Parameter(torch.randn(1, 1, hidden) * 0.02)
            self.pos = nn.Parameter(torch.randn(1, (image // patch) ** 2 + 1, hidden) * 0.02)
            self.layers = nn.Sequential(*(Encoder() for _ in range(layers)))
            self.ln = nn.LayerNorm(hidden, eps=1e-6)
            self.head = nn.Linear(hidden, num_classes)

        def forward(self, x):
            x = self.patch(x).flatten(2).transpose(1, 2)
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
            return self.head(self.ln(self.layers(x))[:, 0])

    return ViT()


ZOO: dict[str, Callable] = {
    "resnet18": lambda: _resnet("basic", (2, 2, 2, 2)),
    "resnet50": lambda: _resnet("bottleneck", (3, 4, 6, 3)),
    "mobilenet_v2": _mobilenet_v2,
    "vit_b_16": _vit,
}
# input image side the published figures are for
IMAGE_SIDE = {"resnet18": 224, "resnet50": 224, "mobilenet_v2": 224, "vit_b_16": 224}


def zoo_names() -> tuple[str, ...]:
    return tuple(ZOO)


def zoo_model(name: str, seed: int = 0):
    """The zoo network `name` with weights (and batch-norm statistics) drawn from `seed`."""
    import torch
    from torch import nn
    if name not in ZOO:
        raise TegelError(f"unknown zoo model {name!r}; known: {', '.join(ZOO)}")
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ZOO[name]()
    with torch.no_grad():
        for m in model.modules():
            # torch's ones and zeros would hide a scale swapped with a shift
            if isinstance(m, nn.BatchNorm2d | nn.LayerNorm):
                ranges: list[tuple[torch.Tensor | None, float, float]] = [
                    (m.weight, 0.5, 1.5), (m.bias, -0.2, 0.2)]
                if isinstance(m, nn.BatchNorm2d):
                    ranges += [(m.running_mean, -0.2, 0.2), (m.running_var, 0.5, 1.5)]
                for t, lo, hi in ranges:
                    if t is not None:
                        t.uniform_(lo, hi, generator=gen)
    return model.eval()


def example_input(name: str, batch: int = 1, side: int | None = None, seed: int = 0):
    """A seeded random image batch [batch, 3, side, side] (side: the published 224)."""
    import torch

    side = side or IMAGE_SIDE[name]
    return torch.randn(batch, 3, side, side, generator=torch.Generator().manual_seed(seed))


def export_onnx(name: str, path: str, seed: int = 0, batch: int | None = None,
                side: int | None = None) -> str:
    """Write zoo network `name` (weights from `seed`) to the ONNX file `path`; returns the
    exporter used: "dynamo" (torch.export + onnxscript) or, if that fails, "legacy"
    (TorchScript tracing). The batch dimension is `batch`, or dynamic when None."""
    import contextlib
    import io
    import logging
    import warnings

    import torch

    # the exporter logs that torchvision's ops are not registered: nothing here uses them
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)

    model = zoo_model(name, seed)
    x = example_input(name, batch or 1, side, seed)
    errors = []
    for exporter, dynamo in (("dynamo", True), ("legacy", False)):
        dynamic: dict = {}
        if batch is None:
            dynamic = ({"dynamic_shapes": {"x": {0: torch.export.Dim("batch")}}} if dynamo
                       else {"input_names": ["x"], "dynamic_axes": {"x": {0: "batch"}}})
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                torch.onnx.export(model, (x,), path, dynamo=dynamo, **dynamic)
            return exporter
        except Exception as err:  # the dynamo exporter fails in many ways; fall back once
            errors.append(f"{exporter}: {str(err).strip().splitlines()[0] if str(err) else err}")
    raise TegelError(f"{path}: could not export {name} to ONNX ({'; '.join(errors)})")
