"""Dynamic time warping nearest neighbour: the classic isolated-word recogniser, a baseline for the speech task.

The distance between utterances a (T_a frames) and b (T_b frames) is the cost of the
cheapest monotonic alignment of their frames, each step's cost the Euclidean distance of the
two frames (Sakoe & Chiba 1978, symmetric steps without weights):

    D[i, j] = d(a_i, b_j) + min(D[i-1, j], D[i-1, j-1], D[i, j-1]),   D[0, 0] = d(a_0, b_0)

divided by T_a + T_b so that long and short words compare. An utterance gets the
transcript of the training utterance nearest to it. Computed for one query against every
reference at once (the references padded, each read at its own length).
"""

from __future__ import annotations

import torch


def dtw_distances(query: torch.Tensor, references: list[torch.Tensor]) -> torch.Tensor:
    """(T, F) query, N references (T_n, F) -> (N,) normalised DTW distances.

    D is filled one anti-diagonal (i + j = k) at a time: its cells depend only on the two diagonals before it, so
    each diagonal is one vector operation over every reference and every cell on it."""
    count, steps = len(references), query.shape[0]
    lengths = torch.tensor([reference.shape[0] for reference in references])
    padded = torch.nn.utils.rnn.pad_sequence(references, batch_first=True)  # (N, R, F)
    costs = torch.cdist(query, padded.reshape(-1, padded.shape[2])).reshape(steps, count, -1).permute(0, 2, 1)  # (T, R, N)
    longest = padded.shape[1]
    total = torch.full((steps + 1, longest + 1, count), float("inf"))  # D shifted by one: row and column 0 border it
    total[0, 0] = 0.0
    for k in range(2, steps + longest + 1):
        i = torch.arange(max(1, k - longest), min(steps, k - 1) + 1)
        j = k - i
        best = torch.minimum(torch.minimum(total[i - 1, j], total[i - 1, j - 1]), total[i, j - 1])
        total[i, j] = costs[i - 1, j - 1] + best
    final = total[steps, lengths, torch.arange(count)]
    return final / (lengths + steps)


def nearest_neighbour(queries: list[torch.Tensor], references: list[torch.Tensor], labels: list[str]) -> list[str]:
    """The label of each query's nearest reference by DTW."""
    return [labels[int(dtw_distances(query, references).argmin())] for query in queries]
