"""Reference program 3: a 784-128-10 network on random data."""

import graphc as torch
import graphc.nn as nn
import graphc.optim as optim


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = torch.relu(self.fc1(x))
        return self.fc2(x)


def main(epochs=10):
    torch.manual_seed(0)
    net = Net()
    inputs = torch.randn(100, 784)
    labels = torch.randint(0, 10, (100,))
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(net.parameters(), lr=0.01)
    losses = []
    for epoch in range(epochs):
        optimizer.zero_grad()
        outputs = net(inputs)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()
        print(f"epoch {epoch + 1}, loss: {loss.item()}")
        losses.append(loss.item())
    return losses


if __name__ == "__main__":
    main()
