"""Shared fixtures: namespaces, binaries (plain, ASan+UBSan, TSan) and
dpinger processes that are always stopped and checked for sanitizer
reports."""

import itertools
import os

import pytest

import netns

_counter = itertools.count()


@pytest.fixture(scope="session")
def netns_available():
    reason = netns.can_use_netns()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def topo(netns_available):
    """A fresh fw/gw namespace pair, removed afterwards."""
    prefix = "t%04x%02d" % (os.getpid() & 0xffff, next(_counter) % 100)
    topology = netns.Topology(prefix).create()
    try:
        yield topology
    finally:
        topology.destroy()


def _binary(variant):
    path = netns.VARIANT_PATHS[variant]
    if not os.access(path, os.X_OK):
        pytest.skip("SKIPPED: %s not built (run `make dpinger sanitizers`)"
                    % path)
    return path


@pytest.fixture(params=netns.variants())
def binary(request):
    """Each integration test runs once per built variant."""
    return _binary(request.param)


@pytest.fixture
def plain_binary():
    """For tests whose figures a sanitizer would distort."""
    return _binary("plain")


@pytest.fixture
def spawn():
    """spawn(binary, args, ns=..., env=...) -> netns.Dpinger; every process
    is stopped at the end, and any sanitizer report fails the test."""
    started = []

    def start(binary, args, **kwargs):
        dp = netns.Dpinger(binary, args, **kwargs)
        started.append(dp)
        return dp

    yield start
    reports = []
    for dp in started:
        if dp.proc.poll() is None:
            dp.stop()
        else:
            for reader in dp.readers:
                reader.join(5)
        reports += dp.sanitizer_reports()
    assert not reports, "sanitizer reports:\n" + "\n".join(reports)
