"""Reference program 4: the MNIST MLP 784-128-64-10 with Adam."""

import graphc as torch
import graphc.nn as nn
import graphc.optim as optim
from graphc.utils.data import DataLoader
from graphc.vision import transforms

from _data import mnist_splits


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.fc2 = nn.Linear(128, 64)
        self.fc3 = nn.Linear(64, 10)

    def forward(self, x):
        x = x.view(-1, 784)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


def main(epochs=2, limit=None):
    torch.manual_seed(0)
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train_set, test_set = mnist_splits(transform)
    train_loader = DataLoader(train_set, batch_size=64, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=1000)

    net = Net()
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(net.parameters(), lr=0.001)
    for epoch in range(epochs):
        for i, (images, labels) in enumerate(train_loader):
            if limit is not None and i >= limit:
                break
            optimizer.zero_grad()
            loss = criterion(net(images), labels)
            loss.backward()
            optimizer.step()
            if i % 100 == 0:
                print(f"epoch {epoch + 1}, batch {i}, loss {loss.item():.4f}")

    correct = total = 0
    with torch.no_grad():
        for images, labels in test_loader:
            _, predicted = torch.max(net(images), 1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()
    accuracy = correct / total
    print(f"test accuracy: {100 * accuracy:.2f}%")
    return accuracy


if __name__ == "__main__":
    main()
