"""The CPU training allocator policy: applied once on glibc, a harmless no-op elsewhere."""

from __future__ import annotations

import platform
import sys

import pytest

from bionic_core.training import host_memory


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="the policy is glibc's mallopt; other C libraries keep their defaults")
def test_glibc_accepts_the_policy_once_per_process(monkeypatch):
    monkeypatch.setattr(host_memory, "_applied", None)
    assert host_memory.keep_freed_memory() is True
    monkeypatch.setattr(host_memory.ctypes, "CDLL", None)  # not called again
    assert host_memory.keep_freed_memory() is True


def test_without_glibc_nothing_is_set(monkeypatch):
    def no_libc(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(host_memory, "_applied", None)
    monkeypatch.setattr(host_memory.ctypes, "CDLL", no_libc)
    assert host_memory.keep_freed_memory() is False
