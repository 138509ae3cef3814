"""DiffRWKVIR reproduction harness: data, metrics, training, evaluation, profiling and tables."""

from repro.registry import ModelDescriptor, build_model, get_descriptor, list_models, register_model

__all__ = ["ModelDescriptor", "build_model", "get_descriptor", "list_models", "register_model"]
