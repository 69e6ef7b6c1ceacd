"""`graphc.optim`: optimizers and learning-rate schedulers with PyTorch's API.

Every optimizer's `step()` is written with tensor ops only, so it can be
traced into a compiled training step; see `graphc.optim.optimizer`.
"""

from graphc.optim import lr_scheduler
from graphc.optim.adadelta import Adadelta
from graphc.optim.adagrad import Adagrad
from graphc.optim.adam import Adam, AdamW
from graphc.optim.lbfgs import LBFGS
from graphc.optim.optimizer import Optimizer
from graphc.optim.rmsprop import RMSprop
from graphc.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "Adagrad", "RMSprop", "Adadelta", "LBFGS", "lr_scheduler"]
