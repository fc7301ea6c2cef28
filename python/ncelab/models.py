"""models.py -- ncelab's encoders in PyTorch (docs/nn_spec.md), parameters named as in the
checkpoints, with the input normalisation of training inside; load_encoder builds one from a
checkpoint."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .checkpoint import load_checkpoint


class _Normalized(nn.Module):
    """An encoder whose input is N x C x H x W floats in [0, 1] (pixel / 255, what torchvision's
    ToTensor gives), normalised per channel by the buffers input_mean and input_std, and whose
    forward returns (features, head): the backbone features and the L2-normalised head output,
    the two layers `ncelab eval --embeddings` writes."""

    def __init__(self, c, mean, std):
        super().__init__()
        self.register_buffer("input_mean", torch.as_tensor(np.asarray(mean, np.float32)).reshape(1, c, 1, 1).clone())
        self.register_buffer("input_std", torch.as_tensor(np.asarray(std, np.float32)).reshape(1, c, 1, 1).clone())

    def forward(self, x):
        h = self.features((x - self.input_mean) / self.input_std)
        return h, F.normalize(self.head(h), dim=1, eps=1e-12)


class ConvNet(_Normalized):
    """convnet: three conv 3x3 / batch norm / ReLU stages (32, 64, 128 channels), max pools after
    the first two, global average pool -> features (128) -> head linear 128 -> ReLU -> linear 128."""

    def __init__(self, c=3, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)):
        super().__init__(c, mean[:c], std[:c])
        self.conv1 = nn.Conv2d(c, 32, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(128)
        self.head = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 128))

    def features(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2, 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2, 2)
        x = F.relu(self.bn3(self.conv3(x)))
        return x.mean(dim=(2, 3))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(_Normalized):
    """resnet18, CIFAR variant: conv 3x3 (64) / batch norm / ReLU, four layers of two BasicBlocks
    (64, 128, 256, 512; stride 2 from layer2), global average pool -> features (512) -> head
    linear 512 -> ReLU -> linear 128."""

    def __init__(self, c=3, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)):
        super().__init__(c, mean[:c], std[:c])
        self.conv1 = nn.Conv2d(c, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for i, w in enumerate((64, 128, 256, 512)):
            stride = 1 if i == 0 else 2
            setattr(self, "layer%d" % (i + 1), nn.Sequential(BasicBlock(cin, w, stride), BasicBlock(w, w, 1)))
            cin = w
        self.head = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 128))

    def features(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3))


MODELS = {"convnet": ConvNet, "resnet18": ResNet18}


def load_encoder(path, mean=None, std=None):
    """The encoder of the checkpoint at path: the model it names (convnet or resnet18), its
    weights and running statistics loaded, in evaluation mode, normalising its input with the
    checkpoint's stored normalisation (mean and std, sequences of C numbers, replace it; they are
    required for checkpoints of ncelab versions that did not store one). ValueError naming the
    file for an unknown model, a missing or misshapen tensor, or no normalisation."""
    ck = load_checkpoint(path)
    if ck.model not in MODELS:
        raise ValueError("%s: model %r is not one of %s" % (ck.path, ck.model, ", ".join(MODELS)))
    w = ck.tensors.get("conv1.weight")
    if w is None or w.ndim != 4:
        raise ValueError("%s: no tensor conv1.weight (not a checkpoint of %s)" % (ck.path, ck.model))
    c = ck.input_shape[0] if ck.input_shape else int(w.shape[1])
    if mean is None or std is None:
        if ck.mean is None:
            raise ValueError("%s: the checkpoint records no input normalisation (written by an older ncelab): "
                             "pass mean= and std=, the per-channel statistics of its training images" % ck.path)
        mean = ck.mean if mean is None else mean
        std = ck.std if std is None else std
    mean, std = np.asarray(mean, np.float32).reshape(-1), np.asarray(std, np.float32).reshape(-1)
    if mean.shape != (c,) or std.shape != (c,) or not np.all(std > 0):
        raise ValueError("%s: mean and std need %d numbers each (std > 0), got %s and %s" % (ck.path, c, mean, std))
    net = MODELS[ck.model](c, mean, std)
    state = net.state_dict()
    load = {}
    for name, t in state.items():
        if name.endswith("num_batches_tracked") or name in ("input_mean", "input_std"):
            continue
        a = ck.tensors.get(name)
        if a is None:
            raise ValueError("%s: no tensor %s (not a checkpoint of %s)" % (ck.path, name, ck.model))
        if tuple(a.shape) != tuple(t.shape):
            raise ValueError("%s: %s: shape %s expected, %s found" % (ck.path, name, list(t.shape), list(a.shape)))
        load[name] = torch.from_numpy(np.array(a, dtype=np.float32))
    net.load_state_dict(load, strict=False)
    return net.eval()
