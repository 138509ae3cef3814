"""DiffRWKVIR reproduction harness: data, metrics, training, evaluation, profiling and tables.

The networks come from the registry (``layers.registry``); importing ``baselines`` and ``models`` registers them,
which happens on the first lookup.
"""

from layers.registry import ModelDescriptor, build_model, declare_providers, get_descriptor, list_models, register_model

declare_providers("baselines", "models")

__all__ = ["ModelDescriptor", "build_model", "get_descriptor", "list_models", "register_model"]
