"""torch_models.py DEEPSKY DIR: LeNet, a small ResNet (basic blocks with
batch norm and residual adds) and an Inception block (four branches
concatenated), exported with torch.onnx.export (opset 13, eval mode),
imported by `deepsky import --run` and compared with PyTorch's outputs on
the same random inputs. Prints one line per model with the max abs error;
exit 1 if any is over 1e-4 or fails to import."""
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 32, 5, padding=2), nn.Conv2d(32, 64, 5, padding=2)
        self.f1, self.f2, self.drop = nn.Linear(64 * 7 * 7, 128), nn.Linear(128, 10), nn.Dropout(0.5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        return self.f2(self.drop(F.relu(self.f1(torch.flatten(x, 1)))))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        return F.relu(y + (self.short(x) if self.short is not None else x))


class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem, self.bn = nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.layers = nn.Sequential(Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2))
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.layers(F.relu(self.bn(self.stem(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class Inception(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.b1 = nn.Conv2d(16, 8, 1)
        self.b3 = nn.Sequential(nn.Conv2d(16, 8, 1), nn.ReLU(), nn.Conv2d(8, 12, 3, padding=1))
        self.b5 = nn.Sequential(nn.Conv2d(16, 4, 1), nn.ReLU(), nn.Conv2d(4, 6, 5, padding=2))
        self.bp = nn.Conv2d(16, 6, 1)
        self.fc = nn.Linear(32, 5)

    def forward(self, x):
        x = F.relu(self.stem(x))
        y = torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(F.max_pool2d(x, 3, 1, 1))], 1)
        y = F.avg_pool2d(F.relu(y), 2)
        return torch.softmax(self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1)), 1)


def main():
    ds, out = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    worst = 0.0
    for name, net, shape in [("LeNet", LeNet(), (1, 28, 28)), ("ResNet", ResNet(), (1, 28, 28)),
                             ("Inception block", Inception(), (3, 16, 16))]:
        for m in net.modules():  # batch-norm statistics that are not the identity
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2), m.weight.data.uniform_(0.5, 1.5)
        net.eval()
        x = torch.randn((8,) + shape)
        base = os.path.join(out, name.split()[0].lower())
        torch.onnx.export(net, x[:1], base + ".onnx", opset_version=13, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
        np.save(base + "-x.npy", x.numpy())
        r = subprocess.run([ds, "import", base + ".onnx", "--out", base, "--run", base + "-x.npy", "--output",
                            base + "-y.npy"], capture_output=True, text=True)
        if r.returncode:
            print(f"{name}: import failed: {r.stderr.strip()}")
            worst = float("inf")
            continue
        with torch.no_grad():
            want = net(x).numpy()
        err = float(abs(np.load(base + "-y.npy").reshape(want.shape) - want).max())
        worst = max(worst, err)
        print(f"{name}: max |deepsky - PyTorch| = {err:.2e}")
    sys.exit(0 if worst <= 1e-4 else 1)


if __name__ == "__main__":
    main()
