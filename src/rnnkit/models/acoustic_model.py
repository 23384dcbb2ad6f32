"""A CTC acoustic model: feature frames in, a distribution over characters and a blank at every (subsampled) step out.

    frames (T, B, F) -> SpecAugment (training) -> [conv subsampling, stride 2 per layer] -> dropout
        -> Recurrent(lengths) -> dropout -> linear -> log-softmax (T', B, V + 1)     label 0: the CTC blank

as the deep bidirectional LSTM-CTC models of Graves et al. 2013 and DeepSpeech 2 (without
their convolutional front layers, optional here). Unidirectional (``--no-bidirectional``) it
reads each frame once, in order: the streaming variant. The loss is ``torch.nn.CTCLoss``,
each utterance's loss divided by its transcript's length and averaged over the batch; an
utterance that no alignment can produce (more labels than steps) counts 0 instead of
infinity (``zero_infinity``), though the task leaves such utterances out before training.

Targets are (S, B) label ids, padded with the blank (which never occurs in a transcript), so
that each transcript's length is its number of non-blank labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rnnkit.cells import State
from rnnkit.data.speech_features import spec_augment
from rnnkit.errors import UserError
from rnnkit.models.config import RecurrentConfig
from rnnkit.models.ctc_decoding import BLANK
from rnnkit.models.readout import step_outputs, step_width
from rnnkit.sequences import step_mask

SUBSAMPLING = (1, 2, 4)


@dataclass
class AcousticModelConfig(RecurrentConfig):
    subsample: int = 1
    """Convolutional subsampling of the frames before the recurrent layers: 1 (none), 2 or 4 (stride-2 layers)."""
    conv_channels: int = 256
    """Channels of each subsampling convolution."""
    frequency_masks: int = 2
    """SpecAugment (training only): feature bands masked per utterance (0: none)."""
    frequency_width: int = 8
    """SpecAugment: the widest band, in features."""
    time_masks: int = 2
    """SpecAugment: spans of steps masked per utterance (0: none)."""
    time_width: int = 10
    """SpecAugment: the longest span, in steps (and at most a fifth of the utterance)."""

    def validate(self) -> None:
        super().validate()
        if self.subsample not in SUBSAMPLING:
            raise UserError(f"--subsample: expected one of {', '.join(map(str, SUBSAMPLING))}, got {self.subsample}")
        for name in ("conv_channels", "frequency_masks", "frequency_width", "time_masks", "time_width"):
            if getattr(self, name) < 0:
                raise UserError(f"--{name.replace('_', '-')}: expected a value >= 0, got {getattr(self, name)}")


class ConvSubsampling(nn.Module):
    """Stride-2 convolutions over time (kernel 3, ReLU), each halving the steps: T -> ceil(T / 2)."""

    def __init__(self, input_size: int, channels: int, layers: int) -> None:
        super().__init__()
        sizes = [input_size] + [channels] * layers
        self.convs = nn.ModuleList(nn.Conv1d(a, b, kernel_size=3, stride=2, padding=1) for a, b in zip(sizes, sizes[1:]))
        self.output_size = sizes[-1]

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for _ in self.convs:
            lengths = (lengths + 1) // 2
        return lengths

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # zero past each length before every convolution, whose window reaches one step past the end: a padded
        # batch then computes what each utterance alone (zero-padded by the convolution) computes
        x = inputs.permute(1, 2, 0) * step_mask(lengths, inputs.shape[0], inputs.device).t()[:, None, :]  # (B, F, T)
        for conv in self.convs:
            lengths = (lengths + 1) // 2
            x = torch.relu(conv(x)) * step_mask(lengths, (x.shape[2] + 1) // 2, x.device).t()[:, None, :]
        return x.permute(2, 0, 1)  # (T', B, C)


class AcousticModel(nn.Module):
    def __init__(self, input_size: int, num_labels: int, config: AcousticModelConfig, stacked: int = 1) -> None:
        """``num_labels`` counts the blank; each input step holds ``stacked`` frames side by side (SpecAugment's bands
        cover the same features of each)."""
        super().__init__()
        self.config, self.stacked = config, stacked
        layers = SUBSAMPLING.index(config.subsample)
        self.subsampling = ConvSubsampling(input_size, config.conv_channels, layers) if layers else None
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = config.build(self.subsampling.output_size if self.subsampling else input_size)
        directions = 2 if config.bidirectional else 1
        self.head = nn.Linear(step_width(self.rnn, directions, config.merge_mode), num_labels)
        self.ctc = nn.CTCLoss(blank=BLANK, reduction="mean", zero_infinity=True)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Steps of the output for inputs of ``lengths`` frames."""
        return self.subsampling.output_lengths(lengths) if self.subsampling else lengths

    def forward(
        self,
        inputs: torch.Tensor,
        state: State | None = None,
        *,
        lengths: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, State]:
        """inputs (T, B, F) frames -> log posteriors (T', B, V + 1) (``output_lengths`` steps of each are real), the
        mean CTC loss against targets (S, B) if given, and the recurrent layers' final state."""
        if lengths is None:
            lengths = torch.full((inputs.shape[1],), inputs.shape[0], dtype=torch.long)
        config = self.config
        if self.training and (config.frequency_masks or config.time_masks):
            inputs = spec_augment(inputs, lengths, config.frequency_masks, config.frequency_width, config.time_masks,
                                  config.time_width, self.stacked)
        steps = self.output_lengths(lengths)
        x = self.subsampling(inputs, lengths) if self.subsampling else inputs
        hidden, state = self.rnn(self.dropout(x), state, lengths=steps)
        log_probs = self.head(self.dropout(step_outputs(hidden))).float().log_softmax(-1)
        loss = None
        if targets is not None:
            target_lengths = (targets != BLANK).sum(0)
            loss = self.ctc(log_probs, targets.t(), steps, target_lengths)
        return log_probs, loss, state
