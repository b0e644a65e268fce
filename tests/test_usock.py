"""The -u status socket of the real binary: one line per connection, many
clients at once, a stuck client delaying no one, and the socket file put
back when someone removes it (the "hung" mode of field.md)."""

import os
import re
import socket
import stat
import struct
import threading
import time

import netns
from netns import V4_FW, V4_GW, wait_until

SAN_ENV = dict(netns.SANITIZER_ENV)
if "atexit_sleep_ms" not in SAN_ENV["TSAN_OPTIONS"]:
    SAN_ENV["TSAN_OPTIONS"] += ":atexit_sleep_ms=0"

STATUS = re.compile(r"GW (0|[1-9][0-9]*) (0|[1-9][0-9]*) (0|[1-9][0-9]*)")


def start(binary, topo, tmp_path, spawn):
    sock = os.path.join(str(tmp_path), "status.sock")
    dp = spawn(binary, ["-i", "GW", "-r", "0", "-u", sock, "-s", "100m",
                        "-t", "2s", "-B", V4_FW, V4_GW],
               ns=topo.fw, env=SAN_ENV)
    netns.wait_status_line(sock, what="the status socket")
    return dp, sock


def blocking_socket(timeout=2.0):
    """A unix stream socket in blocking mode with kernel timeouts.  A
    Python timeout makes connect() non-blocking, and a non-blocking
    connect to a full backlog (5, upstream's) fails with EAGAIN instead of
    waiting its turn as `nc -U` does."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tv = struct.pack("ll", int(timeout), int((timeout % 1) * 1e6))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
    return s


def read_to_eof(s):
    data = b""
    while True:
        chunk = s.recv(256)
        if not chunk:
            return data
        data += chunk


def timed_query(sock):
    """One status query like pfSense's: connect, read to EOF."""
    t0 = time.monotonic()
    with blocking_socket() as s:
        s.connect(sock)
        data = read_to_eof(s)
    took = time.monotonic() - t0
    text = data.decode()
    assert text.endswith("\n") and text.count("\n") == 1, repr(text)
    return text[:-1], took


def test_concurrent_clients(binary, topo, tmp_path, spawn):
    topo.wait_path("v4")
    dp, sock = start(binary, topo, tmp_path, spawn)
    netns.wait_status(sock, lambda n: n[0] > 0, 10, "a first reply")
    clients = 16
    barrier = threading.Barrier(clients)
    results = [None] * clients

    def client(i):
        barrier.wait()
        try:
            results[i] = timed_query(sock)
        except OSError as err:
            results[i] = (err, None)
    threads = [threading.Thread(target=client, args=(i,))
               for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    for line, took in results:
        assert isinstance(line, str) and STATUS.fullmatch(line), results
        assert took < 2 * netns.answer_limit(binary), results
    assert dp.stop() == 0


def test_stuck_clients_delay_no_one(binary, topo, tmp_path, spawn):
    """Clients that connect and never read (nor close), more of them than
    the listen backlog, do not delay a well-behaved client."""
    dp, sock = start(binary, topo, tmp_path, spawn)
    stuck = []
    try:
        for _ in range(20):
            s = blocking_socket()
            s.connect(sock)
            stuck.append(s)
        worst = 0.0
        for _ in range(20):
            line, took = timed_query(sock)
            assert STATUS.fullmatch(line), line
            worst = max(worst, took)
        assert worst < netns.answer_limit(binary), \
            "a query took %.3fs next to stuck clients" % worst
        # The stuck ones got their line and EOF too: nothing waits on them.
        for s in stuck:
            data = read_to_eof(s)
            assert STATUS.fullmatch(data.decode().rstrip("\n")), data
    finally:
        for s in stuck:
            s.close()
    assert dp.stop() == 0
    print("slowest status query next to 20 stuck clients: %.1f ms"
          % (worst * 1000))


def test_removed_socket_recreated(binary, topo, tmp_path, spawn):
    dp, sock = start(binary, topo, tmp_path, spawn)
    assert STATUS.fullmatch(netns.query_status(sock))
    os.unlink(sock)
    removed = time.monotonic()
    wait_until(lambda: os.path.exists(sock), 3, "the socket to come back")
    back = time.monotonic() - removed
    # Checked once a second.
    assert back < 1.5, "re-created after %.2fs" % back
    line = dp.wait_err(r"status socket .* re-created", timeout=3)
    assert line == "GW %s: status socket %s re-created" % (V4_GW, sock)
    mode = os.stat(sock).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o666, oct(mode)
    assert STATUS.fullmatch(netns.query_status(sock))
    assert dp.stop() == 0
    assert not os.path.exists(sock)
    print("status socket re-created after %.0f ms" % (back * 1000))


def test_replaced_socket_left_alone(binary, topo, tmp_path, spawn):
    """A file at the path that is not ours (a newer instance's) stays."""
    dp, sock = start(binary, topo, tmp_path, spawn)
    # Renamed over the socket in one step: an unlink first would leave a
    # moment in which the daemon's check may re-create its socket.
    with open(sock + ".new", "w") as f:
        f.write("someone else's\n")
    os.rename(sock + ".new", sock)
    # Two of the daemon's once-a-second checks.
    deadline = time.monotonic() + 2.2
    while time.monotonic() < deadline:
        assert os.path.isfile(sock), "our replacement was removed"
        time.sleep(0.05)
    with open(sock) as f:
        assert f.read() == "someone else's\n"
    assert not [x for x in dp.err() if "re-created" in x], dp.err()
    assert dp.stop() == 0
