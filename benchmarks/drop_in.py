"""The default char LM's generation latency and training step, in every form a drop-in is used in.

Generation (batch 1, one token per call, the state carried: what ``rnnkit generate`` does),
round-robin in one run, median microseconds per token:

* ``torch.nn stepped``: the same model on ``torch.nn.LSTM`` (oneDNN), called one token at a time;
* ``rnnkit eager``: the model as trained (a single LSTM step runs the cell's own step on CPU);
* ``rnnkit compiled``: ``torch.compile(step, fullgraph=True)``;
* ``onnxruntime``: the file ``rnnkit export`` writes, run by ONNX Runtime;
* ``int8``: ``rnnkit.quantize_dynamic`` (fbgemm's int8 LSTM and linear layers).

Training: one step of truncated BPTT (batch 16 × 128 characters: forward, backward, Adam),
eager against ``torch.compile(model, fullgraph=True)``, fastest of ``--repeats`` after the
compiling step, which is timed apart. With ``--checkpoint RUN`` the weights are a trained
char LM's, and the change int8 makes to its validation loss is measured too.

    python benchmarks/drop_in.py --checkpoint runs/charlm-...
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from rnnkit.export import GenerationStep, export_step
from rnnkit.models import LanguageModelConfig
from rnnkit.models.language_model import LanguageModel
from rnnkit.quantization import quantize_dynamic
from rnnkit.tasks import load_run


class TorchNNLanguageModel(nn.Module):
    """The same embedding, LSTM and head with ``torch.nn.LSTM``: the drop-in's baseline."""

    def __init__(self, model: LanguageModel) -> None:
        super().__init__()
        self.embedding, self.head = model.embedding, model.head
        self.rnn = nn.LSTM(model.rnn.input_size, model.rnn.hidden_size, model.rnn.num_layers)
        self.rnn.load_state_dict(_torch_names(model.rnn))

    def forward(self, tokens, h, c):
        output, (h, c) = self.rnn(self.embedding(tokens), (h, c))
        return self.head(output), h, c


def _torch_names(stack) -> dict:
    return {f"{name}_l{index}": weight for index, layer in enumerate(stack.layers)
            for name, weight in layer.direction_cells[0].weights().items()}


def _generation(contenders: dict, steps: int) -> dict[str, float]:
    """Median seconds per token of each contender, ``steps`` tokens each, interleaved in rounds of 50."""
    times = {name: [] for name in contenders}
    states = {name: start() for name, (start, _) in contenders.items()}
    for _ in range(steps // 50):
        for name, (_, step) in contenders.items():
            start = time.perf_counter()
            for _ in range(50):
                states[name] = step(states[name])
            times[name].append((time.perf_counter() - start) / 50)
    return {name: statistics.median(values) for name, values in times.items()}


def generation_contenders(model: LanguageModel, folder: Path) -> dict:
    """name -> (initial carry, step(carry) -> carry); each step feeds the argmax back, as greedy generation."""
    step_function = GenerationStep(model).eval()
    zero = step_function.example(steps=1, batch=1)

    def stepper(call):
        def step(carry):
            tokens, *state = carry
            logits, *state = call(tokens, *state)
            return (torch.as_tensor(logits).argmax(-1).reshape(1, 1), *map(torch.as_tensor, state))
        return lambda: zero, step

    torch_nn = TorchNNLanguageModel(model).eval()
    compiled = torch.compile(step_function, fullgraph=True)
    quantized, _ = quantize_dynamic(model)
    export_step(step_function, folder / "step.onnx", "onnx")
    import onnxruntime

    settings = onnxruntime.SessionOptions()
    settings.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(str(folder / "step.onnx"), settings, providers=["CPUExecutionProvider"])
    names = [argument.name for argument in session.get_inputs()]
    return {
        "torch.nn stepped": stepper(torch_nn),
        "rnnkit eager": stepper(step_function),
        "rnnkit compiled": stepper(compiled),
        "onnxruntime": stepper(lambda *inputs: session.run(None, dict(zip(names, (t.numpy() for t in inputs))))),
        "int8": stepper(GenerationStep(quantized)),
    }


def training(model: LanguageModel, repeats: int) -> dict[str, float]:
    """Seconds per training step (16 × 128 characters), eager and compiled, and the compiling step's seconds."""
    tokens = torch.randint(0, model.head.out_features, (129, 16))
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step_of(forward):
        def step():
            _, loss, _ = forward(tokens[:-1], targets=tokens[1:])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return step

    compiled = torch.compile(model, fullgraph=True)
    start = time.perf_counter()
    step_of(compiled)()
    result = {"compile s": time.perf_counter() - start}
    steps = {"eager": step_of(model), "compiled": step_of(compiled)}
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return result | {name: min(values) for name, values in times.items()}


def validation_loss(model: nn.Module, tokens: torch.Tensor, batch: int = 16, window: int = 128) -> float:
    """Mean cross-entropy over the held-out text, read as ``batch`` streams in windows with the state carried."""
    usable = tokens[: len(tokens) // batch * batch].reshape(batch, -1).t()  # (N, batch)
    total, count, state = 0.0, 0, None
    with torch.no_grad():
        for start in range(0, usable.shape[0] - 1, window):
            inputs, targets = usable[start:start + window], usable[start + 1:start + window + 1]
            inputs = inputs[: len(targets)]
            logits, _, state = model(inputs, state)
            total += float(nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                                       reduction="sum"))
            count += targets.numel()
    return total / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="a trained char LM's run folder (default: random weights, same shape)")
    parser.add_argument("--tokens", type=int, default=2000, help="generated tokens per contender")
    parser.add_argument("--repeats", type=int, default=5, help="timed training steps of each")
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.checkpoint:
        run = load_run(args.checkpoint)
        model, session = run.session.model.eval(), run.session
    else:
        model, session = LanguageModel(65, LanguageModelConfig(cell="lstm", hidden_size=512, num_layers=1,
                                                               dropout=0.2, embedding_size=128)).eval(), None
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as folder, torch.inference_mode():
        seconds = _generation(generation_contenders(model, Path(folder)), args.tokens)
    baseline = seconds["torch.nn stepped"]
    print("generation at batch 1, µs per token (speed-up over torch.nn stepped):")
    for name, value in seconds.items():
        print(f"  {name:<18}{value * 1e6:>9.0f}  {baseline / value:>5.2f}x")
    if session is not None:
        held_out, _ = session.held_out_tokens()
        float_loss = validation_loss(model, held_out)
        int8_loss = validation_loss(quantize_dynamic(model)[0], held_out)
        print(f"validation loss, nats/char: float {float_loss:.4f}, int8 {int8_loss:.4f} ({int8_loss - float_loss:+.4f})")
    result = training(model, args.repeats)
    print(f"training step (16 x 128 chars): eager {result['eager'] * 1e3:.0f} ms, compiled {result['compiled'] * 1e3:.0f} ms "
          f"({result['compiled'] / result['eager']:.2f}x eager); compiling step {result['compile s']:.1f} s")


if __name__ == "__main__":
    main()
