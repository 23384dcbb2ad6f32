"""Dynamic time warping: the classic template recognisers, baselines for the speech task.

Isolated words, ``nearest_neighbour``:
The distance between utterances a (T_a frames) and b (T_b frames) is the cost of the
cheapest monotonic alignment of their frames, each step's cost the Euclidean distance of the
two frames (Sakoe & Chiba 1978, symmetric steps without weights):

    D[i, j] = d(a_i, b_j) + min(D[i-1, j], D[i-1, j-1], D[i, j-1]),   D[0, 0] = d(a_0, b_0)

divided by T_a + T_b so that long and short words compare. An utterance gets the
transcript of the training utterance nearest to it. Computed for one query against every
reference at once (the references padded, each read at its own length).

Connected words, ``connected_words``: the one-stage dynamic programme (Vintsyuk 1971; Bridle,
Brown & Chamberlain 1982; Ney 1984) finds the sequence of templates, and the alignment of each,
whose concatenation matches the whole utterance best. Every frame t of the utterance is matched
to frame j of some template n; within a template the path advances 0, 1 or 2 template frames a
step, and a template is entered at its first frame from the best template ending the step before:

    D[t, n, j] = d(x_t, r_n,j) + min(D[t-1, n, j], D[t-1, n, j-1], D[t-1, n, j-2])      j > 0
    D[t, n, 0] = d(x_t, r_n,0) + min(D[t-1, n, 0], E[t-1] + penalty)
    E[t] = min_n D[t, n, last_n]

so each utterance frame is counted once and the costs of different segmentations compare.
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


def connected_words(query: torch.Tensor, references: list[torch.Tensor], labels: list[str],
                    penalty: float = 0.0) -> list[str]:
    """The labels of the sequence of references that best matches the (T, F) query end to end (the module
    docstring), ``penalty`` added for every word after the first."""
    count, steps = len(references), query.shape[0]
    lengths = torch.tensor([reference.shape[0] for reference in references])
    padded = torch.nn.utils.rnn.pad_sequence(references, batch_first=True)  # (N, R, F)
    longest = padded.shape[1]
    costs = torch.cdist(query, padded.reshape(-1, padded.shape[2])).reshape(steps, count, longest)
    costs = costs.masked_fill(torch.arange(longest) >= lengths[:, None], float("inf"))
    last, rows = lengths - 1, torch.arange(count)
    inf = torch.full((count, 2), float("inf"))
    total = costs[0].clone().masked_fill_(torch.arange(longest) > 0, float("inf"))  # D[0]: a word starts at frame 0
    start = torch.zeros(count, longest, dtype=torch.long)  # the utterance frame where the path's current word began
    ends: list[tuple[int, int]] = []  # per frame t: (best template ending at t, the frame where it began)
    for t in range(steps):
        if t > 0:
            entry = ends[-1]
            previous = torch.cat([inf, total], dim=1)  # previous[:, j + 2] = D[t-1, :, j]
            starts = torch.cat([torch.zeros(count, 2, dtype=torch.long), start], dim=1)
            choices = torch.stack([previous[:, 2:], previous[:, 1:-1], previous[:, :-2]])  # stay, one, two frames
            best, move = choices.min(dim=0)
            from_start = torch.stack([starts[:, 2:], starts[:, 1:-1], starts[:, :-2]]).gather(0, move[None])[0]
            enter = float(total[entry[0], last[entry[0]]]) + penalty
            entering = enter < best[:, 0]  # a new word beats staying in frame 0 of the same one
            best[:, 0] = torch.where(entering, torch.tensor(enter), best[:, 0])
            from_start[:, 0] = torch.where(entering, torch.tensor(t), from_start[:, 0])
            total, start = costs[t] + best, from_start
        finals = total[rows, last]
        word = int(finals.argmin())
        ends.append((word, int(start[word, last[word]])))
    words, t = [], steps - 1
    while t >= 0:
        word, began = ends[t]
        words.append(labels[word])
        t = began - 1
    return words[::-1]
