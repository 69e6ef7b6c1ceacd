"""Reference program 1: a small regression model trained with MSE and SGD."""

import graphc as torch
import graphc.nn as nn
import graphc.optim as optim
from graphc.utils.data import DataLoader, TensorDataset


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 20)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(20, 1)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


def main(epochs=20, n=256):
    torch.manual_seed(0)
    inputs = torch.randn(n, 10)
    labels = inputs.sum(dim=1, keepdim=True) * 0.5 + 1.0
    loader = DataLoader(TensorDataset(inputs, labels), batch_size=32, shuffle=True)

    model = Model()
    criterion = nn.MSELoss()
    optimizer = optim.SGD(model.parameters(), lr=0.01)
    epoch_losses = []
    for epoch in range(epochs):
        total = 0.0
        for batch_inputs, batch_labels in loader:
            outputs = model(batch_inputs)
            loss = criterion(outputs, batch_labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch_inputs)
        epoch_losses.append(total / n)
        print(f"epoch {epoch + 1}: mean loss {epoch_losses[-1]:.4f}")
    return epoch_losses


if __name__ == "__main__":
    main()
