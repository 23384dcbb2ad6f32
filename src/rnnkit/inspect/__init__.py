"""Seeing inside recurrent models: gradient flow through time, gate activity, units over text."""

from rnnkit.inspect.gates import gate_statistics, record_steps
from rnnkit.inspect.grad_flow import GradientFlow, gradient_flow
from rnnkit.inspect.recording import Recording, record

__all__ = ["GradientFlow", "Recording", "gate_statistics", "gradient_flow", "record", "record_steps"]
