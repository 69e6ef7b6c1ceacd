"""`graphc demo` end to end: real data (the checkout's MNIST test set,
split) and the generated-digits fallback; the printed report and the saved
checkpoint."""

from __future__ import annotations

import re
from pathlib import Path

import graphc
import graphc.cli as cli
from graphc.utils.data import DataLoader, Subset
from graphc.vision import datasets, models, transforms


def report(text: str) -> dict:
    """The demo's summary lines, parsed."""
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines()]
    acc = [re.fullmatch(r"test accuracy: ([\d.]+)% on (\d+) images", line) for line in lines]
    speed = [re.match(r"training speed: (\d+) images/s \((\d+) images in ([\d.]+) s", line) for line in lines]
    ckpt = [re.fullmatch(r"checkpoint saved to (.+)", line) for line in lines]
    data = [line for line in lines if line.startswith("data: ")]
    found = [m for m in acc if m], [m for m in speed if m], [m for m in ckpt if m]
    assert all(len(f) == 1 for f in found) and len(data) == 1, text
    (a,), (s,), (c,) = found
    return {
        "data": data[0],
        "accuracy": float(a.group(1)) / 100,
        "eval_images": int(a.group(2)),
        "images_per_s": int(s.group(1)),
        "images": int(s.group(2)),
        "checkpoint": Path(c.group(1)),
        "bar": any(re.search(r"epoch 1/1: +100%\|", line) for line in lines),
    }


def accuracy_of(state_dict, dataset) -> float:
    net = models.Net()
    net.load_state_dict(state_dict)
    net.eval()
    correct = 0
    with graphc.no_grad():
        for x, y in DataLoader(dataset, batch_size=1000):
            correct += int((net(x).argmax(1) == y).sum().item())
    return correct / len(dataset)


def test_demo_on_the_mnist_split(tmp_path, capsys, mnist_dir):
    out = tmp_path / "net.safetensors"
    rc = cli.main(["demo", "--root", str(mnist_dir), "--epochs", "1", "--limit", "2000", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0
    r = report(captured.out)
    print(captured.out.replace("\r", "\n").splitlines()[-3:])
    assert (
        r["data"].startswith("data: MNIST test set from") and "first 8000 images train, last 2000 evaluate" in r["data"]
    )
    assert r["bar"], "no completed tqdm progress bar in the output"
    assert r["eval_images"] == 2000
    assert r["images"] == 2000 // 64 * 64  # drop_last
    assert r["images_per_s"] > 0
    assert r["accuracy"] > 0.75, r  # 31 steps of Adam give ~82%; 3 epochs on 8,000 reach ~98%
    assert r["checkpoint"] == out and out.is_file()
    # the checkpoint loads into a fresh Net and reproduces the printed accuracy
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    test = datasets.MNIST(mnist_dir, train=False, transform=tf)
    assert abs(accuracy_of(graphc.load(str(out)), Subset(test, range(8000, 10000))) - r["accuracy"]) < 1e-3


def test_demo_falls_back_to_generated_digits(tmp_path, capsys, monkeypatch):
    def offline(url, *args, **kwargs):
        raise OSError("offline (test)")

    monkeypatch.setattr(datasets, "_fetch_url", offline)
    out = tmp_path / "ckpt" / "net.safetensors"
    root = tmp_path / "no-data-here"
    rc = cli.main(["demo", "--root", str(root), "--epochs", "1", "--limit", "640", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0
    assert "using generated digits instead" in captured.err and "offline (test)" in captured.err
    r = report(captured.out)
    assert r["data"].startswith("data: generated digits (640 train, 2000 test)")
    assert r["images"] == 640 and r["eval_images"] == 2000
    assert r["accuracy"] > 0.5, r  # ten steps on easy synthetic digits; chance is 0.1
    state = graphc.load(str(out))
    assert set(state) == set(models.Net().state_dict())
    eval_set = datasets.SyntheticDigits(
        2000, seed=1, transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    )
    assert abs(accuracy_of(state, eval_set) - r["accuracy"]) < 1e-3
