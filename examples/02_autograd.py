"""Reference program 2: autograd snippets."""

import graphc as torch


def main():
    x = torch.tensor(2.0, requires_grad=True)
    y = x**2
    y.backward()
    print(x.grad)  # tensor(4.)

    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    z = y * 3
    out = z.mean()
    out.backward()
    print(x.grad)  # tensor([2., 2., 2.])

    t = torch.tensor([[1, 2], [3, 4]])
    print(t)
    print(t.dtype)
    return x.grad


if __name__ == "__main__":
    main()
