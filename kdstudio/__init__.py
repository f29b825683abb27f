"""KD Studio: knowledge distillation on your own workstation."""

__version__ = "0.1.0"
