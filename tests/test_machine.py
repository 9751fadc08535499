"""CPU model and flags (sklcifar.machine), read from /proc/cpuinfo."""

from sklcifar import machine, training

AMD_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9B14
flags\t\t: fpu sse2 avx avx2 fma

processor\t: 1
model name\t: AMD EPYC 9B14
flags\t\t: fpu sse2 avx avx2 fma
"""


def test_model_and_flags_come_from_cpuinfo(monkeypatch):
    monkeypatch.setattr(machine, "_cpuinfo", lambda: AMD_CPUINFO)
    assert machine.cpu_model() == "AMD EPYC 9B14"
    assert machine.cpu_flags() == {"fpu", "sse2", "avx", "avx2", "fma"}
    facts = machine.describe_machine()
    assert facts["cpu"] == "AMD EPYC 9B14" and facts["avx2"] is True
    assert not any(facts[flag] for flag in ("avx512f", "avx512_bf16", "amx_tile", "amx_bf16"))
    assert not training.cpu_supports_bf16.__wrapped__()  # the AVX2-only CPU emulates bf16


def test_bf16_detection_reads_the_same_flags(monkeypatch):
    monkeypatch.setattr(machine, "_cpuinfo", lambda: "flags\t: avx2 avx512f amx_bf16 amx_tile\n")
    assert training.cpu_supports_bf16.__wrapped__() and training.cpu_prefers_bf16.__wrapped__()


def cpuinfo(vendor: str, flags: str) -> str:
    return f"vendor_id\t: {vendor}\nmodel name\t: a CPU\nflags\t\t: {flags}\n"


def test_avx512_bf16_without_amx_trains_in_bf16_on_amd_only(monkeypatch):
    # Measured: bf16 1.34x faster than float32 on an AMD EPYC with AVX-512 BF16, 1.4x slower
    # on an Intel Xeon with the same flags and no AMX (benchmarks/RESULTS.md).
    monkeypatch.setattr(
        machine, "_cpuinfo", lambda: cpuinfo("AuthenticAMD", "avx2 avx512f avx512_bf16")
    )
    assert machine.cpu_vendor() == "AuthenticAMD"
    assert training.cpu_supports_bf16.__wrapped__() and training.cpu_prefers_bf16.__wrapped__()
    monkeypatch.setattr(
        machine, "_cpuinfo", lambda: cpuinfo("GenuineIntel", "avx2 avx512f avx512_bf16")
    )
    assert training.cpu_supports_bf16.__wrapped__()
    assert not training.cpu_prefers_bf16.__wrapped__()
    monkeypatch.setattr(machine, "_cpuinfo", lambda: cpuinfo("AuthenticAMD", "avx2 avx512f"))
    assert not training.cpu_prefers_bf16.__wrapped__()  # no native bf16: emulated, slow
    monkeypatch.setattr(machine, "_cpuinfo", lambda: AMD_CPUINFO)
    assert not training.cpu_prefers_bf16.__wrapped__()


def test_no_cpuinfo_means_no_flags(monkeypatch):
    monkeypatch.setattr(machine, "_cpuinfo", lambda: "")
    assert machine.cpu_flags() == frozenset() and machine.cpu_model()
    assert machine.cpu_vendor() == ""
