"""Reference program 10: a word-level language model, in the manner of
PyTorch's word_language_model example.

A recurrent network (RNN_TANH, RNN_RELU, LSTM or GRU) or a transformer
encoder with a causal mask predicts the next word. The corpus is split into
`batch_size` parallel streams and trained by truncated backpropagation
through time over windows of `bptt` words (the recurrent state is carried
from window to window, detached); gradients are clipped and applied by
plain SGD, and the learning rate is divided by 4 whenever the validation
loss stops improving. `--tied` shares the embedding and output weights.

    python 10_word_language_model.py --model LSTM --tied
    python 10_word_language_model.py --model Transformer --compile
"""

import argparse
import math

import graphc as torch
import graphc.nn as nn
import graphc.nn.functional as F

CORPUS = """\
the cat sat on the mat and the dog sat by the door .
the dog saw the cat and the cat saw the dog .
a bird sang in the tree by the door and the cat looked up .
the dog ran to the tree and the bird flew away over the house .
the sun came up over the hill and the house was warm .
the cat slept in the sun and the dog slept by the fire .
in the morning the bird came back to the tree and sang again .
the old man opened the door and called the dog into the house .
the dog ran into the house and lay down by the fire .
the cat came in after the dog and sat on the mat by the fire .
the old man sat in his chair and read a book by the window .
outside the rain began to fall on the hill and on the tree .
the bird sat in the tree and waited for the rain to stop .
when the rain stopped the sun came out and the bird sang again .
the old man closed his book and looked out of the window at the hill .
the dog and the cat were asleep by the fire and the house was quiet .
"""


class Dictionary:
    def __init__(self):
        self.word2idx = {}
        self.idx2word = []

    def add_word(self, word):
        if word not in self.word2idx:
            self.idx2word.append(word)
            self.word2idx[word] = len(self.idx2word) - 1
        return self.word2idx[word]

    def __len__(self):
        return len(self.idx2word)


class Corpus:
    """Word ids of the text, one `<eos>` after each line; the last
    `valid_lines` lines are the validation split."""

    def __init__(self, text, valid_lines=3):
        self.dictionary = Dictionary()
        lines = [line for line in text.splitlines() if line.strip()]
        self.train = self.tokenize(lines[:-valid_lines])
        self.valid = self.tokenize(lines[-valid_lines:])

    def tokenize(self, lines):
        ids = []
        for line in lines:
            for word in line.split() + ["<eos>"]:
                ids.append(self.dictionary.add_word(word))
        return torch.tensor(ids, dtype=torch.int64)


def batchify(data, bsz):
    """Cut the id sequence into `bsz` equal streams, one per column."""
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    return data.view(bsz, -1).t().contiguous()


def get_batch(source, i, bptt):
    """The window of `bptt` rows starting at row i and its targets (the
    next word of every position, flattened)."""
    seq_len = min(bptt, len(source) - 1 - i)
    data = source[i : i + seq_len]
    target = source[i + 1 : i + 1 + seq_len].reshape(-1)
    return data, target


class RNNModel(nn.Module):
    """Embedding, a recurrent stack and a linear decoder."""

    def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers, dropout=0.5, tie_weights=False):
        super().__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        if rnn_type in ["LSTM", "GRU"]:
            self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout)
        elif rnn_type in ["RNN_TANH", "RNN_RELU"]:
            nonlinearity = {"RNN_TANH": "tanh", "RNN_RELU": "relu"}[rnn_type]
            self.rnn = nn.RNN(ninp, nhid, nlayers, nonlinearity=nonlinearity, dropout=dropout)
        else:
            raise ValueError(f"unknown model type {rnn_type!r}: use RNN_TANH, RNN_RELU, LSTM, GRU or Transformer")
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            if nhid != ninp:
                raise ValueError("When using the tied flag, nhid must be equal to emsize")
            self.decoder.weight = self.encoder.weight
        self.rnn_type, self.nhid, self.nlayers = rnn_type, nhid, nlayers
        self.init_weights()

    def init_weights(self):
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output).view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        if self.rnn_type == "LSTM":
            return (weight.new_zeros(self.nlayers, bsz, self.nhid), weight.new_zeros(self.nlayers, bsz, self.nhid))
        return weight.new_zeros(self.nlayers, bsz, self.nhid)


class PositionalEncoding(nn.Module):
    """Adds the fixed sine/cosine position signal of "Attention Is All You
    Need" to a (sequence, batch, features) input."""

    def __init__(self, d_model, dropout=0.1, max_len=5000):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe.unsqueeze(1))

    def forward(self, x):
        return self.dropout(x + self.pe[: x.size(0)])


class TransformerModel(nn.Module):
    """Embedding, positional encoding, a causal TransformerEncoder and a
    linear decoder."""

    def __init__(self, ntoken, ninp, nhead, nhid, nlayers, dropout=0.5, max_len=5000):
        super().__init__()
        self.ntoken, self.ninp = ntoken, ninp
        self.input_emb = nn.Embedding(ntoken, ninp)
        self.pos_encoder = PositionalEncoding(ninp, dropout, max_len)
        layer = nn.TransformerEncoderLayer(ninp, nhead, nhid, dropout)
        self.encoder = nn.TransformerEncoder(layer, nlayers, enable_nested_tensor=False)
        self.decoder = nn.Linear(ninp, ntoken)
        self.init_weights()

    def init_weights(self):
        initrange = 0.1
        nn.init.uniform_(self.input_emb.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, src, has_mask=True):
        mask = nn.Transformer.generate_square_subsequent_mask(len(src)) if has_mask else None
        src = self.pos_encoder(self.input_emb(src) * math.sqrt(self.ninp))
        output = self.decoder(self.encoder(src, mask=mask))
        return F.log_softmax(output, dim=-1).view(-1, self.ntoken)


def make_model(args, ntokens):
    if args.model == "Transformer":
        return TransformerModel(ntokens, args.emsize, args.nhead, args.nhid, args.nlayers, args.dropout)
    return RNNModel(args.model, ntokens, args.emsize, args.nhid, args.nlayers, args.dropout, args.tied)


def repackage_hidden(h):
    """Detach the hidden state from the graph of the previous window."""
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


def make_step(model, criterion, clip, compile=False):
    """One training step on a window: forward, backward, gradient clipping
    and an SGD update at `lr`; returns (loss, next hidden state)."""
    is_transformer = isinstance(model, TransformerModel)

    def step(data, targets, hidden, lr):
        model.zero_grad()
        if is_transformer:
            output = model(data)
        else:
            output, hidden = model(data, hidden)
        loss = criterion(output, targets)
        loss.backward()
        # Clipping keeps the exploding gradients of RNNs/LSTMs in check.
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(p.grad, alpha=-lr)
        return loss, hidden

    return torch.compile(step) if compile else step


def train_epoch(model, step, train_data, bptt, batch_size, lr, max_batches=None):
    """One pass over `train_data`; the loss of every window."""
    model.train()
    hidden = None if isinstance(model, TransformerModel) else model.init_hidden(batch_size)
    losses = []
    for batch, i in enumerate(range(0, train_data.size(0) - 1, bptt)):
        if max_batches is not None and batch >= max_batches:
            break
        data, targets = get_batch(train_data, i, bptt)
        if hidden is not None:
            hidden = repackage_hidden(hidden)
        loss, hidden = step(data, targets, hidden, lr)
        losses.append(loss.item())
    return losses


def evaluate(model, criterion, data_source, bptt, batch_size):
    """The mean loss per word over `data_source`."""
    model.eval()
    total_loss = 0.0
    hidden = None if isinstance(model, TransformerModel) else model.init_hidden(batch_size)
    with torch.no_grad():
        for i in range(0, data_source.size(0) - 1, bptt):
            data, targets = get_batch(data_source, i, bptt)
            if hidden is None:
                output = model(data)
            else:
                output, hidden = model(data, hidden)
            total_loss += len(data) * criterion(output, targets).item()
    return total_loss / (len(data_source) - 1)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="word-level language model")
    parser.add_argument("--data", help="train on this text file instead of the built-in corpus")
    parser.add_argument("--model", default="LSTM", help="RNN_TANH, RNN_RELU, LSTM, GRU or Transformer")
    parser.add_argument("--emsize", type=int, default=32, help="size of word embeddings")
    parser.add_argument("--nhid", type=int, default=32, help="hidden units per layer")
    parser.add_argument("--nlayers", type=int, default=2)
    parser.add_argument("--lr", type=float, help="initial learning rate (default 20, or 2 for the Transformer)")
    parser.add_argument("--clip", type=float, default=0.25, help="gradient clipping")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--bptt", type=int, default=12, help="sequence length")
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--tied", action="store_true", help="tie the word embedding and softmax weights")
    parser.add_argument("--nhead", type=int, default=2, help="heads of the Transformer model")
    parser.add_argument("--seed", type=int, default=1111)
    parser.add_argument("--compile", action="store_true", help="compile the training step")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    corpus = Corpus(open(args.data).read() if args.data else CORPUS)
    ntokens = len(corpus.dictionary)
    train_data = batchify(corpus.train, args.batch_size)
    val_data = batchify(corpus.valid, 1)
    model = make_model(args, ntokens)
    criterion = nn.NLLLoss()
    step = make_step(model, criterion, args.clip, compile=args.compile)
    print(f"{args.model}: {ntokens} words, {len(corpus.train)} training tokens")

    # On a corpus this small the transformer diverges at the recurrent models' lr.
    lr = args.lr if args.lr is not None else (2.0 if args.model == "Transformer" else 20.0)
    best_val_loss = None
    val_losses = []
    for epoch in range(1, args.epochs + 1):
        losses = train_epoch(model, step, train_data, args.bptt, args.batch_size, lr)
        train_loss = sum(losses) / len(losses)
        val_loss = evaluate(model, criterion, val_data, args.bptt, 1)
        val_losses.append(val_loss)
        print(
            f"| epoch {epoch:3d} | lr {lr:5.2f} | train loss {train_loss:5.2f} | "
            f"valid loss {val_loss:5.2f} | valid ppl {math.exp(val_loss):8.2f}"
        )
        if best_val_loss is None or val_loss < best_val_loss:
            best_val_loss = val_loss
        else:
            lr /= 4.0  # anneal when the validation loss stops improving
    return val_losses


if __name__ == "__main__":
    main()
