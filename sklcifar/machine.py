"""What the machine offers for training: CPU model, core count, the vector and matrix flags
that decide TensorFlow's speed, and accelerators.

Training speed on a CPU depends on a few instruction-set flags: AVX2 (every x86-64 CPU of
the last decade), AVX-512 (``avx512f``), native bfloat16 dot products (``avx512_bf16``) and
Intel's AMX tile units (``amx_tile``, ``amx_bf16``), and on who made the CPU: AVX-512 BF16
made bf16 mixed precision faster than float32 on an AMD EPYC, slower on an Intel Xeon
without AMX (``sklcifar.training.cpu_prefers_bf16``). Benchmarks name them beside every
figure.
"""

from __future__ import annotations

import functools
import os
import platform

__all__ = ["CPU_FLAGS", "cpu_flags", "cpu_model", "cpu_vendor", "describe_machine", "gpu_names"]

# The flags that change which precision and which kernels are fastest.
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


@functools.cache
def _cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:  # not Linux: no flags known
        return ""


def _cpuinfo_field(name: str) -> str | None:
    """The value of the first ``name`` line of /proc/cpuinfo (every core repeats it)."""
    for line in _cpuinfo().splitlines():
        if line.startswith(name):
            return line.split(":", 1)[1].strip()
    return None


def cpu_model() -> str:
    """The CPU's model name ("Intel(R) Xeon(R) ...", "AMD EPYC ..."), or the architecture."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def cpu_vendor() -> str:
    """The CPU's maker as the CPU names itself ("GenuineIntel", "AuthenticAMD"), or ""."""
    return _cpuinfo_field("vendor_id") or ""


def cpu_flags() -> frozenset[str]:
    """Every instruction-set flag the CPU reports (empty where /proc/cpuinfo is absent)."""
    return frozenset((_cpuinfo_field("flags") or "").split())


def gpu_names() -> list[str]:
    """Names of the GPUs TensorFlow can use (empty on the CPU build or without a GPU)."""
    import tensorflow as tf

    return [device.name for device in tf.config.list_physical_devices("GPU")]


def describe_machine() -> dict[str, str | int | bool]:
    """Facts to print and store beside every speed figure.

    Returns
    -------
    facts : dict
        ``cpu`` (model name), ``cores`` (logical CPUs this process may use), one boolean per
        flag of ``CPU_FLAGS``, ``gpus`` (comma-separated, "" for none), ``tensorflow`` and
        ``keras`` (versions).

    Examples
    --------
    >>> from sklcifar.machine import describe_machine
    >>> facts = describe_machine()
    >>> sorted(facts)[:3]
    ['amx_bf16', 'amx_tile', 'avx2']
    """
    import keras
    import tensorflow as tf

    flags = cpu_flags()
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return {
        "cpu": cpu_model(),
        "cores": cores,
        **{flag: flag in flags for flag in CPU_FLAGS},
        "gpus": ",".join(gpu_names()),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }
