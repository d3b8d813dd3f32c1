#!/usr/bin/env python3
"""PyTorch peers for scripts/gpu_report.sh, timed on the same GPU as bitgrad.

- The main job's two models as straight-through BNNs in PyTorch, trained like bitgrad's
  `bench --train` (batch 64, Adam 1e-3, sparse categorical cross-entropy, random 28x28 inputs
  in [-1, 1]): Larq's user-guide MLP and Larq's MNIST tutorial CNN. Binarization is Larq's
  SteSign (sign with +1 at 0; gradient passed where |x| <= 1) on the inputs and kernels that
  Larq binarizes, and weight_clip (clip to [-1, 1]) after each step. The arithmetic is float:
  this is how a BNN trains in PyTorch (and in Larq), the baseline bitgrad's packed kernels
  are measured against.
- torch.matmul in fp32 with TF32 off (the float GEMM reference) at square sizes and at the
  products of the main job's training steps.

Writes one JSON object (--json) and prints a table. Needs torch with CUDA; --device cpu runs
the same on the CPU (slowly) to check the script.
"""

import argparse
import json
import statistics
import time

import torch
from torch import nn


class SteSign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        return dy * (x.abs() <= 1).to(dy.dtype)


def ste(x):
    return SteSign.apply(x)


class QuantDense(nn.Module):
    def __init__(self, n_in, n_out, binary_input, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_out, n_in).uniform_(-0.05, 0.05))
        self.bias = nn.Parameter(torch.zeros(n_out)) if bias else None
        self.binary_input = binary_input

    def forward(self, x):
        if self.binary_input:
            x = ste(x)
        return nn.functional.linear(x, ste(self.weight), self.bias)


class QuantConv(nn.Module):
    def __init__(self, c_in, c_out, binary_input):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(c_out, c_in, 3, 3).uniform_(-0.05, 0.05))
        self.binary_input = binary_input

    def forward(self, x):
        if self.binary_input:
            x = ste(x)
        return nn.functional.conv2d(x, ste(self.weight))


class BN(nn.Module):
    """BatchNorm without a learned scale (Keras scale=False), over channels of 2-D or 4-D input."""

    def __init__(self, c):
        super().__init__()
        self.norm = nn.BatchNorm1d(c, eps=1e-3, momentum=0.01, affine=False)
        self.beta = nn.Parameter(torch.zeros(c))

    def forward(self, x):
        if x.dim() == 4:
            y = nn.functional.batch_norm(x, None, None, training=True, eps=1e-3)
            return y + self.beta.view(1, -1, 1, 1)
        return self.norm(x) + self.beta


def guide_mlp():
    return nn.Sequential(nn.Flatten(), QuantDense(784, 512, False, True), QuantDense(512, 10, True, True))


def tutorial_cnn():
    return nn.Sequential(
        QuantConv(1, 32, False),
        nn.MaxPool2d(2),
        BN(32),
        QuantConv(32, 64, True),
        nn.MaxPool2d(2),
        BN(64),
        QuantConv(64, 64, True),
        BN(64),
        nn.Flatten(),
        QuantDense(576, 64, True, False),
        BN(64),
        QuantDense(64, 10, True, False),
        BN(10),
    )


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_steps(name, model, device, batch, steps):
    torch.manual_seed(0)
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    x = (torch.rand(batch, 1, 28, 28, device=device) * 2 - 1)
    y = torch.randint(0, 10, (batch,), device=device)
    clipped = [m.weight for m in model.modules() if isinstance(m, (QuantDense, QuantConv))]

    def step():
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for w in clipped:
                w.clamp_(-1, 1)
        # bitgrad reads the loss back every step; so does this.
        return loss.item()

    for _ in range(3):
        step()
    times = []
    for _ in range(steps):
        sync(device)
        t = time.perf_counter()
        step()
        sync(device)
        times.append((time.perf_counter() - t) * 1e3)
    ms = statistics.median(times)
    return {"model": name, "batch": batch, "steps": steps, "wall_ms": ms, "images_per_s": batch / ms * 1e3}


def matmul_rate(device, m, k, n, min_time=0.5):
    a = torch.randn(m, k, device=device)
    b = torch.randn(k, n, device=device)
    for _ in range(3):
        torch.matmul(a, b)
    sync(device)
    runs, start = 0, time.perf_counter()
    while runs < 3 or time.perf_counter() - start < min_time:
        torch.matmul(a, b)
        runs += 1
    sync(device)
    ms = (time.perf_counter() - start) / runs * 1e3
    return {"shape": f"{m}x{k}x{n}", "ms": ms, "gflops": 2 * m * k * n / ms / 1e6, "runs": runs}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--gemms", default="", help="extra m,k,n;m,k,n products (the main job's)")
    ap.add_argument("--json", required=True)
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    info = {
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "tf32": False,
    }
    train = [
        train_steps("mlp", guide_mlp(), device, args.batch, args.steps),
        train_steps("cnn", tutorial_cnn(), device, args.batch, args.steps),
    ]
    shapes = [(1024, 1024, 1024), (4096, 4096, 4096), (64, 4096, 4096), (1, 4096, 1024)]
    shapes += [tuple(int(v) for v in s.split(",")) for s in args.gemms.split(";") if s]
    gemms = [matmul_rate(device, *s) for s in shapes]
    out = {**info, "train": train, "matmul": gemms}
    with open(args.json, "w") as f:
        json.dump(out, f, indent=2)
    print(f"PyTorch {info['torch']} on {info['device']} (TF32 off)")
    for t in train:
        print(f"  {t['model']:<4} batch {t['batch']}: {t['wall_ms']:.3f} ms/step, {t['images_per_s']:.0f} images/s")
    for g in gemms:
        print(f"  torch.matmul {g['shape']:<18} {g['ms']:.3f} ms  {g['gflops']:.0f} GFLOP/s")


if __name__ == "__main__":
    main()
