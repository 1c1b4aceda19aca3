"""Time to accuracy in PyTorch: the recipe `nin time-to-accuracy` ran, run again with PyTorch.

    npx nin time-to-accuracy --profile cpu --runs 5 --json > ours.json
    /usr/bin/python3 scripts/torch_time_to_accuracy.py --recipe ours.json > torch.json

It reads the recipe (training and model configs, resolved) and the seeds from the JSON that
`nin time-to-accuracy --json` prints, and trains the same network the same way: the same
layers, initialisation, class-block bias and lift, optimizer and its constants, learning-rate
schedule and warm-up, label smoothing, batch size, image size (bilinear, half-pixel centres),
dropout, evaluation points and target. Its random draws (weights, shuffles, dropout masks) are
PyTorch's own, so a seed here is not the same run as that seed there: compare over seeds.
The clock starts after the data is in memory, before the model is built, and evaluations count,
as in `nin time-to-accuracy`.

Prints one JSON object: {"framework", "threads", "target", "evalsPerEpoch", "runs": [{"seed",
"reached", "seconds", "evalSeconds", "epochs", "images", "curve": [{"seconds", "epochs",
"images", "testAcc"}]}]}. Needs Debian's python3-torch (CPU) and the Fashion-MNIST files.
"""
import argparse, gzip, json, math, os, struct, sys, time

import torch
import torch.nn.functional as F
from torch import nn

DATA_DIRS = ["data", "/usr/share/datasets/fashion-mnist"]


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic = struct.unpack(">I", raw[:4])[0]
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * dims, raw[4:4 + 4 * dims])
    return torch.frombuffer(bytearray(raw[4 + 4 * dims:]), dtype=torch.uint8).reshape(shape)


def load(data_dir, split):
    base = {"train": "train", "test": "t10k"}[split]
    for d in ([data_dir] if data_dir else DATA_DIRS):
        for ext in ("", ".gz"):
            images = os.path.join(d, f"{base}-images-idx3-ubyte{ext}")
            labels = os.path.join(d, f"{base}-labels-idx1-ubyte{ext}")
            if os.path.isfile(images) and os.path.isfile(labels):
                return read_idx(images), read_idx(labels).long()
    sys.exit(f"torch_time_to_accuracy: Fashion-MNIST's {split} files are not in {data_dir or ' or '.join(DATA_DIRS)}; "
             "install dataset-fashion-mnist or pass --data-dir")


def nin_block(cin, cout, k, s, pad, follow):
    layers = [nn.Conv2d(cin, cout, k, s, pad), nn.ReLU()]
    for _ in range(follow):
        layers += [nn.Conv2d(cout, cout, 1), nn.ReLU()]
    return nn.Sequential(*layers)


def nin(model):
    follow, classes = model["oneByOneCount"], model["numClasses"]
    net = nn.Sequential(nin_block(model["inputChannels"], 96, 11, 4, 0, follow), nn.MaxPool2d(3, 2),
                        nin_block(96, 256, 5, 1, 2, follow), nn.MaxPool2d(3, 2),
                        nin_block(256, 384, 3, 1, 1, follow), nn.MaxPool2d(3, 2), nn.Dropout(model["dropout"]),
                        nin_block(384, classes, 3, 1, 1, follow), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())
    for conv in (m for m in net.modules() if isinstance(m, nn.Conv2d)):
        if model["init"] == "he":
            nn.init.kaiming_uniform_(conv.weight, nonlinearity="relu")  # tfjs heUniform: ±√(6 / fan in)
        else:
            nn.init.xavier_uniform_(conv.weight)
        if model["init"] != "d2l-torch":
            nn.init.zeros_(conv.bias)  # d2l-torch keeps PyTorch's default: uniform ±1/√(fan in)
    if model["classBlockBias"] != 0:
        for conv in class_block(net):
            nn.init.constant_(conv.bias, model["classBlockBias"])
    return net


def class_block(net):
    return [m for m in net[7].modules() if isinstance(m, nn.Conv2d)]


def batch(images, labels, idx, resize):
    x = images[idx].unsqueeze(1).float().div_(255)  # [b, 1, 28, 28]
    return F.interpolate(x, size=(resize, resize), mode="bilinear", align_corners=False), labels[idx]


@torch.no_grad()
def lift_class_block(net, images, resize, margin, count=256):
    """Raise each class-block bias whose channel falls below margin on the first images (lib/core/classBlockLift.ts)."""
    if margin <= 0:
        return
    x, _ = batch(images, torch.zeros(len(images), dtype=torch.long), torch.arange(min(count, len(images))), resize)
    net.eval()  # no dropout, as the library's lift
    for module in net[:8]:
        if isinstance(module, nn.Sequential) and module is net[7]:
            for layer in module:
                if isinstance(layer, nn.Conv2d):
                    short = margin - layer(x).amin(dim=(0, 2, 3))
                    layer.bias += torch.where(short > margin * 1e-4, short, torch.zeros_like(short))
                x = layer(x)
        else:
            x = module(x)
    net.train()


def learning_rate_at(t, step, steps_per_epoch):
    warm = t["warmupSteps"]
    if step < warm:
        return t["lr"] * (step + 1) / warm
    if t["lrSchedule"] == "constant":
        return t["lr"]
    total = t["numEpochs"] * steps_per_epoch - warm
    frac = 1 if total <= 0 else min(step - warm, total) / total
    if t["lrSchedule"] == "linear":
        return t["lr"] * (1 - frac)
    return t["lr"] * 0.5 * (1 + math.cos(math.pi * frac))


@torch.no_grad()
def accuracy(net, images, labels, resize):
    net.eval()
    right = 0
    for start in range(0, len(images), 256):
        x, y = batch(images, labels, torch.arange(start, min(start + 256, len(images))), resize)
        right += (net(x).argmax(1) == y).sum().item()
    net.train()
    return right / len(images)


def optimizer_for(net, t):
    if t["optimizer"] == "adam":
        return torch.optim.Adam(net.parameters(), lr=t["lr"], betas=(0.9, 0.999), eps=1e-7)
    return torch.optim.SGD(net.parameters(), lr=t["lr"], momentum=t["momentum"])


def run(recipe, seed, train, test, target, evals_per_epoch):
    t, m = recipe["train"], recipe["model"]
    torch.manual_seed(seed)
    started = time.perf_counter()
    net = nin(m)
    lift_class_block(net, train[0], t["resize"], t["classBlockMargin"])
    opt = optimizer_for(net, t)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=t["labelSmoothing"])
    n, b = len(train[0]), t["batchSize"]
    steps = math.ceil(n / b)
    eval_after = {round((j + 1) * steps / evals_per_epoch) for j in range(evals_per_epoch - 1)} | {steps}
    curve, eval_seconds = [], 0.0
    for epoch in range(t["numEpochs"]):
        order = torch.randperm(n)
        for step in range(steps):
            for group in opt.param_groups:
                group["lr"] = learning_rate_at(t, epoch * steps + step, steps)
            x, y = batch(*train, order[step * b:(step + 1) * b], t["resize"])
            opt.zero_grad()
            loss_fn(net(x), y).backward()
            opt.step()
            if step + 1 in eval_after:
                at = time.perf_counter()
                acc = accuracy(net, *test, t["resize"])
                eval_seconds += time.perf_counter() - at
                images = epoch * n + min((step + 1) * b, n)
                curve.append({"seconds": time.perf_counter() - started, "epochs": epoch + (step + 1) / steps, "images": images, "testAcc": acc})
                print(f"seed {seed}: {curve[-1]['epochs']:.2f} epochs, {curve[-1]['seconds']:.1f} s: test acc {acc:.4f}", file=sys.stderr)
                if acc >= target:
                    return finish(seed, True, curve, eval_seconds, started)
    return finish(seed, False, curve, eval_seconds, started)


def finish(seed, reached, curve, eval_seconds, started):
    last = curve[-1] if curve else {"seconds": 0, "epochs": 0, "images": 0}
    seconds = last["seconds"] if reached else time.perf_counter() - started
    return {"seed": seed, "reached": reached, "seconds": seconds, "evalSeconds": eval_seconds,
            "epochs": last["epochs"], "images": last["images"], "curve": curve}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--recipe", required=True, help="the JSON `nin time-to-accuracy --json` printed")
    p.add_argument("--seeds", help="comma-separated seeds (default: the runs' seeds in --recipe)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-dir")
    p.add_argument("--flush-denormal", action="store_true",
                   help="treat denormal floats as 0 (torch.set_flush_denormal), as a check on slow steps")
    a = p.parse_args()
    try:
        with open(a.recipe) as f:
            ours = json.load(f)
        recipe = next(r["result"]["recipe"] for r in ours["runs"] if r["outcome"] == "measured")
    except (OSError, ValueError, KeyError, StopIteration, TypeError) as e:
        sys.exit(f"torch_time_to_accuracy: {a.recipe} is not the output of `nin time-to-accuracy --json` with a measured run ({e})")
    seeds = [int(s) for s in a.seeds.split(",")] if a.seeds else [r["seed"] for r in ours["runs"]]
    torch.set_num_threads(a.threads)
    if a.flush_denormal and not torch.set_flush_denormal(True):
        sys.exit("torch_time_to_accuracy: --flush-denormal: this CPU cannot flush denormals")
    train, test = load(a.data_dir, "train"), load(a.data_dir, "test")
    if recipe.get("trainLimit"):
        train = (train[0][:recipe["trainLimit"]], train[1][:recipe["trainLimit"]])
    if recipe.get("testLimit"):
        test = (test[0][:recipe["testLimit"]], test[1][:recipe["testLimit"]])
    runs = [run(recipe, s, train, test, ours["target"], ours["evalsPerEpoch"]) for s in seeds]
    print(json.dumps({"framework": "torch " + torch.__version__, "threads": a.threads, "flushDenormal": a.flush_denormal, "target": ours["target"],
                      "evalsPerEpoch": ours["evalsPerEpoch"], "recipe": recipe, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
