"""libFuzzer harnesses for the routing-message and ICMP parsers.

`make fuzz` builds build/fuzz-{bsd,netlink,icmp} (clang, with ASan and
UBSan).  Here: every seed reaches its parser as the message it is (the
harness prints what the parser returned when FUZZ_DUMP is set), each
fuzzer runs a short while from a copy of its corpus without a crash, and a
planted crash (FUZZ_SELFTEST) is seen as one, so a real crash would be too.
For longer runs: make fuzz-run FUZZ_SECONDS=3600.
"""
import glob
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
NAMES = ["bsd", "netlink", "icmp"]
SECONDS = int(os.environ.get("DPINGER_FUZZ_SECONDS", "10"))

# One read of every kind at interface index 0x102 (258)
MODEL_BURST = ["event kind=4 index=258 addr=- name=ipsec1 ",
               "event kind=3 index=258 addr=- name= up=1 ",
               "event kind=1 index=258 addr=2001:db8::2 name=ipsec1 ",
               "event kind=2 index=258 addr=192.0.2.2 name= ", "events 4"]

# seed -> lines its parser's result must contain
EXPECT = {
    "bsd": {
        "newaddr4": ["event kind=1 index=3 addr=192.0.2.2 name=vtnet1 ",
                     "events 1"],
        "deladdr6-kame": ["event kind=2 index=7 addr=fe80::2 name=ipsec1 ",
                          "events 1"],
        "zero-sockaddr": ["event kind=1 index=3 addr=2001:db8::2 ",
                          "events 1"],
        "ifinfo-up": ["event kind=3 index=7 addr=- name= up=1 ",
                      "events 1"],
        "announce": ["event kind=4 index=9 addr=- name=ipsec1 ",
                     "event kind=5 index=7 addr=- name=ipsec1 ",
                     "events 2"],
        "route-add": ["events 0"],
        # six messages, a limit of three events
        "burst": ["event kind=5 index=7 ", "event kind=4 index=9 ",
                  "event kind=3 index=7 ", "events 3"],
        # the 32-bit and big-endian models, chosen by the first byte: a
        # wrong model would misread the index 0x102 or the sockaddrs
        "ilp32-burst": MODEL_BURST,
        "be-burst": MODEL_BURST,
        "ilp32-be-burst": MODEL_BURST,
    },
    "netlink": {
        "newaddr4": ["event kind=1 index=3 addr=192.0.2.2 ", "events 1"],
        "deladdr6": ["event kind=2 index=4 addr=2001:db8::2 name= up=0 "
                     "tentative=1", "events 1"],
        "newlink": ["event kind=3 index=5 addr=- name=veth0 up=1 ",
                    "events 1"],
        "dellink": ["event kind=5 index=5 addr=- name=veth0 ", "events 1"],
        "overrun": ["event kind=6 ", "events 1"],
        "burst": ["event kind=5 index=5 ", "event kind=3 index=5 ",
                  "event kind=6 ", "events 3"],
    },
    "icmp": {
        "reply4": ["reply 1 id=4660 seq=7"],
        "reply4-options": ["reply 1 id=4660 seq=7"],
        "reply6": ["reply 1 id=4660 seq=7"],
        "request4": ["reply 0 "],
        "request6": ["reply 0 "],
    },
}


def fuzz_env(**extra):
    env = dict(os.environ)
    env.pop("FUZZ_DUMP", None)
    env.pop("FUZZ_SELFTEST", None)
    env["ASAN_OPTIONS"] = "halt_on_error=1:detect_leaks=1"
    env["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1"
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def fuzzers():
    if shutil.which("clang") is None:
        pytest.skip("SKIPPED: clang is not installed")
    proc = subprocess.run(["make", "fuzz", "FUZZCC=clang"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 and "clang_rt.fuzzer" in proc.stderr:
        pytest.skip("SKIPPED: clang's libFuzzer runtime is not installed")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {name: os.path.join(ROOT, "build", "fuzz-" + name)
            for name in NAMES}


def test_corpus_matches_expectations():
    for name in NAMES:
        seeds = sorted(os.listdir(os.path.join(CORPUS, name)))
        assert seeds == sorted(EXPECT[name]), name


@pytest.mark.parametrize("name,seed", [(n, s) for n in NAMES
                                       for s in sorted(EXPECT[n])])
def test_seed_reaches_parser(fuzzers, name, seed):
    path = os.path.join(CORPUS, name, seed)
    proc = subprocess.run([fuzzers[name], path], env=fuzz_env(FUZZ_DUMP="1"),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = [l for l in proc.stderr.splitlines()
             if l.startswith(("event", "reply"))]
    for want in EXPECT[name][seed]:
        assert any(l.startswith(want) for l in lines), \
            "%r not in %r" % (want, lines)


@pytest.mark.parametrize("name", NAMES)
def test_short_fuzz_run(fuzzers, name, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(os.path.join(CORPUS, name), corpus)
    before = sorted(os.listdir(os.path.join(CORPUS, name)))
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    proc = subprocess.run(
        [fuzzers[name], "-max_total_time=%d" % SECONDS,
         "-artifact_prefix=%s/" % artifacts, "-print_final_stats=1",
         str(corpus)],
        env=fuzz_env(), capture_output=True, text=True,
        timeout=SECONDS + 120)
    tail = "\n".join(proc.stderr.splitlines()[-40:])
    assert proc.returncode == 0, tail
    assert os.listdir(artifacts) == [], tail
    assert "runtime error" not in proc.stderr, tail
    assert "Sanitizer" not in proc.stderr, tail
    runs = re.search(r"^Done (\d+) runs", proc.stderr, re.M)
    assert runs and int(runs.group(1)) > 1000, tail
    # the fuzzer grew its working copy, never the repository's corpus
    assert len(os.listdir(corpus)) >= len(before)
    assert sorted(os.listdir(os.path.join(CORPUS, name))) == before


@pytest.mark.parametrize("name", NAMES)
def test_planted_crash_is_caught(fuzzers, name, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "planted").write_bytes(b"\x08CRASH" + bytes(32))
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    # without the switch, the same input is harmless
    proc = subprocess.run([fuzzers[name], "-runs=200", str(corpus)],
                          env=fuzz_env(), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = subprocess.run(
        [fuzzers[name], "-runs=200", "-artifact_prefix=%s/" % artifacts,
         str(corpus)],
        env=fuzz_env(FUZZ_SELFTEST="1"), capture_output=True, text=True,
        timeout=60)
    assert proc.returncode != 0, proc.stderr[-2000:]
    assert "deadly signal" in proc.stderr, proc.stderr[-2000:]
    assert glob.glob(str(artifacts / "crash-*")), proc.stderr[-2000:]
