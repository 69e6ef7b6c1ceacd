"""Reference program 8: linear and logistic regression by gradient descent."""

import graphc as torch
import graphc.nn as nn
import graphc.optim as optim


def linear_regression(steps=200):
    torch.manual_seed(0)
    x = torch.randn(100, 1)
    y = 3.0 * x + 2.0 + 0.01 * torch.randn(100, 1)
    model = nn.Linear(1, 1)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    criterion = nn.MSELoss()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    w, b = model.weight.item(), model.bias.item()
    print(f"linear: y = {w:.3f} x + {b:.3f}")
    return w, b


def logistic_regression(steps=300):
    torch.manual_seed(0)
    x = torch.randn(200, 2)
    y = ((x[:, 0] + x[:, 1]) > 0).float().unsqueeze(1)
    model = nn.Linear(2, 1)
    optimizer = optim.SGD(model.parameters(), lr=0.5)
    criterion = nn.BCELoss()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = criterion(torch.sigmoid(model(x)), y)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = ((torch.sigmoid(model(x)) > 0.5).float() == y).float().mean().item()
    print(f"logistic: accuracy {accuracy * 100:.1f}%")
    return accuracy


def main():
    return linear_regression(), logistic_regression()


if __name__ == "__main__":
    main()
