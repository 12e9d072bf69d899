"""The work one reading may do: a classifier that counts the inputs it is given and refuses past
its budget, so that whatever an image holds its reading's time is bounded; and, where a server
gives one, a deadline checked between the reading's steps and at every model call."""

from __future__ import annotations

import time

import numpy as np

from edge.pi.classifier import DigitClassifier
from edge.pi.image import ImageError


class DeadlinePassed(Exception):
    """A reading that ran past its deadline (edge.pi.serve answers it 503, try again)."""


class Budget:
    """Inputs left to one reading (at most `inputs`: edge/pi/reader.py's ReaderSettings), shared by
    every model it uses; and its deadline (time.monotonic() seconds; None: none)."""

    def __init__(self, inputs: int, deadline: float | None = None):
        self.limit = self.left = inputs
        self.deadline = deadline

    def spend(self, count: int) -> None:
        self.check_deadline()
        if count > self.left:
            raise ImageError(f"no number found: reading it would take over {self.limit} model inputs "
                             "(pieces and ways to cut them); too many marks for a written number")
        self.left -= count

    def check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise DeadlinePassed("the reading ran past its deadline")


class Bounded:
    """A model whose predict spends the budget first (a refusal before the work, not after)."""

    def __init__(self, model: DigitClassifier, budget: Budget):
        self.model, self.budget = model, budget

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.budget.spend(len(batch))
        return self.model.predict(batch)
