"""The profile JSON's required keys (a JSON Schema), checked before a profile is written.

Beyond the schema: every Table 4 column that is null must have its reason in ``missing``, and so must the GPU-only
measurements (NVML, Nsight Compute) when they are absent.
"""

from __future__ import annotations

import jsonschema

TABLE4_COLUMNS = ("params_m", "flops_g", "train_time_s", "infer_time_s", "l2_hit_pct", "dram_read_gbps")

_NUMBER_OR_NULL = {"type": ["number", "null"]}
_TIMES = {
    "type": "object",
    "required": ["median_s", "p10_s", "p90_s", "q1_s", "q3_s", "iqr_s", "min_s", "max_s", "n", "samples_s"],
}
_KERNEL = {"type": "object", "required": ["backends", "forms", "calls"]}

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["schema", "model", "scale", "task", "overrides", "device", "device_name", "precision", "tf32",
                 "threads", "versions", "git_sha", "input", "train_batch", *TABLE4_COLUMNS, "protocol", "params",
                 "flops", "macs", "analytic", "kernels", "inference", "train_step", "memory", "nvml", "ncu",
                 "extrapolated", "missing"],
    "properties": {
        **{column: _NUMBER_OR_NULL for column in TABLE4_COLUMNS},
        "model": {"type": "string"},
        "device": {"type": "string"},
        "precision": {"type": "string"},
        "tf32": {"type": "object", "required": ["cuda_matmul", "cudnn", "float32_matmul_precision"]},
        "threads": {"type": "integer", "minimum": 1},
        "versions": {"type": "object", "required": ["python", "torch"]},
        "input": {"type": "object", "required": ["lr_hw", "output_hw", "preset"]},
        "protocol": {"type": "object", "required": list(TABLE4_COLUMNS)},
        "params": {"type": "object", "required": ["total", "parts"]},
        "flops": {"type": "integer", "minimum": 0},
        "macs": {"type": "number", "minimum": 0},
        "analytic": {"type": "object", "additionalProperties": {"type": "integer"}},
        "kernels": {"type": "object", "additionalProperties": _KERNEL},
        "inference": _TIMES,
        "train_step": {"oneOf": [_TIMES, {"type": "null"}]},
        "memory": {"type": "object", "required": ["inference", "train_step"]},
        "nvml": {"type": "object", "required": ["inference", "train_step"]},
        "extrapolated": {"type": "object", "required": ["infer_time_s"]},
        "missing": {"type": "object", "additionalProperties": {"type": "string", "minLength": 1}},
    },
}


def validate(profile: dict) -> None:
    """Raise ``ValueError`` unless ``profile`` has every required key and a reason for every absent measurement."""
    try:
        jsonschema.validate(profile, SCHEMA)
    except jsonschema.ValidationError as error:
        raise ValueError(f"profile JSON does not match its schema: {error.message} at {list(error.absolute_path)}") \
            from error
    missing = profile["missing"]
    unexplained = [c for c in TABLE4_COLUMNS if profile[c] is None and c not in missing]
    if profile["nvml"]["inference"] is None and "nvml" not in missing:
        unexplained.append("nvml")
    if profile["ncu"] is None and not {"l2_hit_pct", "dram_read_gbps"} <= set(missing):
        unexplained.append("ncu")
    if profile["train_step"] is None and "train_step" not in missing:
        unexplained.append("train_step")
    if unexplained:
        raise ValueError(f"profile JSON lacks the reason why {unexplained} were not measured (in 'missing')")
