"""Reference program 7: save and load a state dict, replace the last layer
and fine-tune, and the device idiom."""

import os
import tempfile

import graphc as torch
import graphc.nn as nn
import graphc.optim as optim
from graphc.vision import models


def main(num_classes=3, path=None):
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    path = path or os.path.join(tempfile.mkdtemp(), "model.pth")

    net = models.resnet18(num_classes=10)
    torch.save(net.state_dict(), path)
    restored = models.resnet18(num_classes=10)
    restored.load_state_dict(torch.load(path))
    print(f"saved and reloaded {len(restored.state_dict())} tensors from {path}")

    # Fine-tune: a new head for `num_classes` classes, only the head trains.
    for p in restored.parameters():
        p.requires_grad = False
    restored.fc = nn.Linear(restored.fc.in_features, num_classes)
    restored = restored.to(device)
    optimizer = optim.SGD(restored.fc.parameters(), lr=0.01, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    images = torch.randn(4, 3, 32, 32).to(device)
    labels = torch.randint(0, num_classes, (4,)).to(device)
    losses = []
    for step in range(3):
        optimizer.zero_grad()
        loss = criterion(restored(images), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        print(f"fine-tune step {step + 1}: loss {loss.item():.4f}")
    return restored, losses


if __name__ == "__main__":
    main()
