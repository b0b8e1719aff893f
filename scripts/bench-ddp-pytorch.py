#!/usr/bin/env python3
"""PyTorch DDP (gloo) peer of `mpirun -n R digits-dist bench train --threads 1`: R processes of one
thread each train the same ResNet step (BCE-with-logits, AdamW) on random 1×128×44 inputs with a
per-rank batch (weak scaling); prints the global samples/s.

    pip install torch
    python3 scripts/bench-ddp-pytorch.py --ranks 2 --arch resnet18 --width 16 --batch 32
"""
import argparse
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from importlib import import_module  # noqa: E402

ResNet = import_module("bench-train-pytorch").ResNet


def worker(rank, args, results):
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(args.port))
    dist.init_process_group("gloo", rank=rank, world_size=args.ranks)
    torch.manual_seed(0)
    model = ResNet(args.arch, args.width).train()
    ddp = torch.nn.parallel.DistributedDataParallel(model) if args.ranks > 1 else model
    optimizer = torch.optim.AdamW(ddp.parameters(), lr=1e-3)
    inputs = torch.randn(args.batch, 1, 128, 44)
    targets = F.one_hot(torch.randint(0, 10, (args.batch,)), 10).float()

    def step():
        optimizer.zero_grad(set_to_none=False)
        F.binary_cross_entropy_with_logits(ddp(inputs), targets).backward()
        optimizer.step()

    for _ in range(args.warmup):
        step()
    dist.barrier()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    dist.barrier()
    results[rank] = time.perf_counter() - start
    dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--arch", default="resnet18", choices=["resnet18", "resnet34", "resnet50"])
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--batch", type=int, default=32, help="per-rank batch")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--port", type=int, default=29533)
    args = parser.parse_args()
    results = mp.Manager().dict()
    mp.spawn(worker, args=(args, results), nprocs=args.ranks, join=True)
    seconds = max(results.values()) / args.steps
    print(f"pytorch-ddp {args.ranks} ranks x 1 thread {args.arch} width {args.width} batch {args.batch}/rank: "
          f"{seconds * 1e3:.1f} ms/step, {args.ranks * args.batch / seconds:.1f} samples/s")


if __name__ == "__main__":
    main()
