"""Reference program 9: a character-level GPT.

Token and position embeddings, a stack of pre-norm transformer blocks
(nn.TransformerEncoderLayer with a causal mask, so each position attends
only to itself and the past), a final LayerNorm and a linear head predict
the next character of a short built-in text. Trained with AdamW under a
linear-warmup cosine learning-rate schedule and gradient clipping; then a
sample is drawn from the model.

    python 09_char_gpt.py                 # eager
    python 09_char_gpt.py --compile       # the training step compiled
    python 09_char_gpt.py --text ../README.md --steps 500
"""

import argparse
import math

import graphc as torch
import graphc.nn as nn
import graphc.nn.functional as F
import graphc.optim as optim

TEXT = """\
The river rises in the hills above the town, where the snow lies late into
spring. In the first warm weeks the water runs fast and brown, and the old
mill wheel turns day and night. By midsummer the river is slow and clear;
children wade in the shallows and the herons stand still among the reeds,
waiting. In autumn the leaves come down and drift in slow circles on the
dark pools, and the fishermen sit on the stones with their lines in the
water, saying little. In winter the edges freeze, and the river talks to
itself under the ice until the spring comes round again. The people of the
town say that the river keeps time for them: it tells them when to plant,
when to cut the hay, when to bring the sheep down from the high fields, and
when to sit by the fire and tell the old stories once more.
"""


class CharGPT(nn.Module):
    """A decoder-only transformer over characters."""

    def __init__(self, vocab_size, block_size, n_embd=64, n_head=4, n_layer=2, dropout=0.1):
        super().__init__()
        self.block_size = block_size
        self.tok_emb = nn.Embedding(vocab_size, n_embd)
        self.pos_emb = nn.Embedding(block_size, n_embd)
        self.drop = nn.Dropout(dropout)
        block = nn.TransformerEncoderLayer(
            n_embd,
            n_head,
            dim_feedforward=4 * n_embd,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(block, n_layer, enable_nested_tensor=False)
        self.ln_f = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, vocab_size, bias=False)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx):
        B, T = idx.shape
        pos = torch.arange(T)
        x = self.drop(self.tok_emb(idx) + self.pos_emb(pos))
        mask = nn.Transformer.generate_square_subsequent_mask(T)
        x = self.blocks(x, mask=mask, is_causal=True)
        return self.head(self.ln_f(x))

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0):
        for _ in range(max_new_tokens):
            logits = self(idx[:, -self.block_size :])[:, -1, :] / temperature
            probs = F.softmax(logits, dim=-1)
            idx = torch.cat([idx, torch.multinomial(probs, num_samples=1)], dim=1)
        return idx


def encode_text(text):
    """The sorted character vocabulary and the text as a 1-D tensor of ids."""
    chars = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(chars)}
    return chars, torch.tensor([stoi[ch] for ch in text], dtype=torch.long)


def random_batches(data, steps, batch_size, block_size):
    """`steps` batches of `batch_size` random windows: inputs and the same
    windows shifted by one character (the targets)."""
    for _ in range(steps):
        starts = torch.randint(len(data) - block_size - 1, (batch_size,)).tolist()
        x = torch.stack([data[i : i + block_size] for i in starts])
        y = torch.stack([data[i + 1 : i + 1 + block_size] for i in starts])
        yield x, y


def warmup_cosine(warmup, total, min_ratio=0.1):
    """The lr factor: linear warmup, then cosine decay to `min_ratio`."""

    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def train(model, batches, steps, lr=3e-3, warmup=10, clip=1.0, compile=False, log_every=0):
    """Train on `batches` ((x, y) pairs) for `steps` steps; the losses."""
    optimizer = optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    scheduler = optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(warmup, steps))

    def train_step(x, y):
        optimizer.zero_grad()
        logits = model(x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        return loss

    if compile:
        train_step = torch.compile(train_step)
    model.train()
    losses = []
    for step, (x, y) in zip(range(steps), batches):
        loss = train_step(x, y)
        scheduler.step()
        losses.append(loss.item())
        if log_every and (step % log_every == 0 or step == steps - 1):
            print(f"step {step:4d}: loss {losses[-1]:.4f}, lr {scheduler.get_last_lr()[0]:.2e}")
    return losses


def main(argv=None):
    parser = argparse.ArgumentParser(description="character-level GPT")
    parser.add_argument("--text", help="train on this text file instead of the built-in paragraph")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--block-size", type=int, default=32)
    parser.add_argument("--n-embd", type=int, default=64)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--n-layer", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--compile", action="store_true", help="compile the training step")
    parser.add_argument("--sample-chars", type=int, default=200, help="length of the sample printed at the end")
    parser.add_argument("--seed", type=int, default=1337)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    text = open(args.text).read() if args.text else TEXT
    chars, data = encode_text(text)
    print(f"{len(text)} characters, vocabulary of {len(chars)}")
    model = CharGPT(len(chars), args.block_size, args.n_embd, args.n_head, args.n_layer, args.dropout)
    print(f"{sum(p.numel() for p in model.parameters())} parameters")
    batches = random_batches(data, args.steps, args.batch_size, args.block_size)
    losses = train(model, batches, args.steps, lr=args.lr, compile=args.compile, log_every=max(1, args.steps // 10))

    model.eval()
    start = torch.zeros(1, 1, dtype=torch.long)
    sample = model.generate(start, max_new_tokens=args.sample_chars)[0].tolist()
    print("sample:")
    print("".join(chars[i] for i in sample))
    return losses


if __name__ == "__main__":
    main()
