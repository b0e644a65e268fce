#!/usr/bin/env python3
"""Write the fuzzers' seed corpora: a few small valid messages each.

    python3 tests/fuzz/make_corpus.py      # rewrites tests/fuzz/corpus/

The first byte of every seed is the harness's own parameter (the event
limit for the routing parsers, the family for ICMP); the rest is what the
kernel would hand to recv().  FreeBSD messages are at the offsets of
tests/unit/fbsd_layout.h, in each of its layout models (the first byte
picks the model); netlink ones use Linux's structs.
"""
import os
import socket
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


# FreeBSD PF_ROUTE --------------------------------------------------------

class Model:
    """A FreeBSD layout model (tests/unit/fbsd_layout.h): sizeof(long),
    which SA_SIZE pads sockaddrs to, rt_msghdr's size, byte order."""

    def __init__(self, align, rtm_size, order):
        self.align, self.rtm_size, self.e = align, rtm_size, order

    def sa(self, family, body, sa_len=None):
        """A sockaddr (sa_len, family, body) padded to SA_SIZE."""
        raw = bytes([0, family]) + body
        n = len(raw) if sa_len is None else sa_len
        raw = bytes([n]) + raw[1:n] if n else b""
        size = self.align if n == 0 else -(-n // self.align) * self.align
        return raw + bytes(size - len(raw))

    def sin(self, text):
        return self.sa(2, b"\0\0" + socket.inet_pton(socket.AF_INET, text) +
                       bytes(8))

    def sin6(self, text, scope=0):
        return self.sa(28, b"\0\0" + bytes(4) +
                       socket.inet_pton(socket.AF_INET6, text) +
                       struct.pack(self.e + "I", scope))

    def sdl(self, index, name):
        body = struct.pack(self.e + "HBBBB", index, 6, len(name), 6, 0)
        body += name.encode() + b"\x02\x00\x5e\x00\x53\x01"
        return self.sa(18, body.ljust(52, b"\0"))

    def msg(self, rtype, header, sockaddrs=b""):
        """A message: msglen u16, version 5, type, then the rest."""
        body = header + sockaddrs
        return struct.pack(self.e + "HBB", 4 + len(body), 5, rtype) + body

    def ifam(self, rtype, index, addrs, sockaddrs):
        return self.msg(rtype, struct.pack(self.e + "iiHHi", addrs, 1, index,
                                           0, 0), sockaddrs)

    def ifinfo(self, index, flags, link_state):
        if_data = bytes([6, 0, 6, 0, link_state]).ljust(152, b"\0")
        return self.msg(0x0e, struct.pack(self.e + "iiHH", 0, flags, index,
                                          0) + if_data)

    def announce(self, index, name, what):
        return self.msg(0x11, struct.pack(self.e + "H16sH", index,
                                          name.encode(), what))

    def route(self, rtype, index):
        hdr = struct.pack(self.e + "HHiiiiii", index, 0, 3, 7, 4242, 1, 0, 0)
        hdr += bytes(self.rtm_size - 4 - len(hdr))
        return self.msg(rtype, hdr, self.sin("198.51.100.0") +
                        self.sin("192.0.2.1") +
                        self.sa(2, b"\0\0\xff\xff\xff", 7))

    def addr4(self, rtype, index, name, addr):
        return self.ifam(rtype, index, 0x04 | 0x10 | 0x20 | 0x80,
                         self.sa(2, b"\0\0\xff\xff\xff", 7) +
                         self.sdl(index, name) + self.sin(addr) +
                         self.sin("192.0.2.255"))

    def addr6(self, rtype, index, name, addr, scope=0):
        return self.ifam(rtype, index, 0x04 | 0x10 | 0x20,
                         self.sin6("ffff:ffff:ffff:ffff::") +
                         self.sdl(index, name) + self.sin6(addr, scope))


# The harness's first byte: event limit (byte % 9), model (byte // 9 % 4).
LP64 = Model(8, 152, "<")
ILP32 = Model(4, 92, "<")
LP64_BE = Model(8, 152, ">")
ILP32_BE = Model(4, 92, ">")


def bsd_seeds():
    m = LP64
    addr4 = m.addr4(0x0c, 3, "vtnet1", "192.0.2.2")
    addr6 = m.addr6(0x0d, 7, "ipsec1", "fe80:7::2", 7)
    zero = m.ifam(0x0c, 3, 0x01 | 0x04 | 0x20, m.sa(0, b"", 0) +
                  m.sa(0, b"", 0) + m.sin6("2001:db8::2"))
    up = m.ifinfo(7, 0x41, 2)
    arrive = m.announce(9, "ipsec1", 0)
    depart = m.announce(7, "ipsec1", 1)
    seeds = {
        "newaddr4": b"\x08" + addr4,
        "deladdr6-kame": b"\x08" + addr6,
        "zero-sockaddr": b"\x08" + zero,
        "ifinfo-up": b"\x08" + up,
        "announce": b"\x08" + arrive + depart,
        "route-add": b"\x08" + m.route(1, 3),
        "burst": b"\x03" + depart + m.route(2, 7) + arrive + up + addr6 +
                 addr4,
    }
    # the other models: one read of every kind, at index 0x102
    for name, number, model in (("ilp32", 1, ILP32), ("be", 2, LP64_BE),
                                ("ilp32-be", 3, ILP32_BE)):
        seeds[name + "-burst"] = bytes([number * 9 + 8]) + model_burst(model)
    return seeds


def model_burst(m):
    return (m.announce(0x102, "ipsec1", 0) + m.route(1, 0x102) +
            m.ifinfo(0x102, 0x41, 2) +
            m.addr6(0x0c, 0x102, "ipsec1", "2001:db8::2") +
            m.ifam(0x0d, 0x102, 0x01 | 0x20, m.sa(0, b"", 0) +
                   m.sin("192.0.2.2")))


# Linux rtnetlink ---------------------------------------------------------

def rta(rtype, data):
    raw = struct.pack("=HH", 4 + len(data), rtype) + data
    return raw + bytes(-len(raw) % 4)


def nlmsg(ntype, body):
    body += bytes(-len(body) % 4)
    return struct.pack("=IHHII", 16 + len(body), ntype, 0, 1, 0) + body


def nl_addr(ntype, family, index, flags, attrs):
    return nlmsg(ntype, struct.pack("=BBBBI", family, 24, flags, 0, index) +
                 b"".join(attrs))


def nl_link(ntype, index, flags, name):
    return nlmsg(ntype, struct.pack("=BxHiII", 0, 1, index, flags,
                                    0xffffffff) +
                 rta(4, struct.pack("=I", 1500)) +
                 rta(3, name.encode() + b"\0"))


def netlink_seeds():
    v4 = nl_addr(20, socket.AF_INET, 3, 0x80, [
        rta(1, socket.inet_pton(socket.AF_INET, "192.0.2.1")),
        rta(2, socket.inet_pton(socket.AF_INET, "192.0.2.2")),
        rta(3, b"veth0\0")])
    v6 = nl_addr(21, socket.AF_INET6, 4, 0x40, [
        rta(1, socket.inet_pton(socket.AF_INET6, "2001:db8::2")),
        rta(8, struct.pack("=I", 0x40))])
    up = nl_link(16, 5, 0x1 | 0x40, "veth0")
    gone = nl_link(17, 5, 0, "veth0")
    overrun = nlmsg(4, b"")
    return {
        "newaddr4": b"\x08" + v4,
        "deladdr6": b"\x08" + v6,
        "newlink": b"\x08" + up,
        "dellink": b"\x08" + gone,
        "overrun": b"\x08" + overrun,
        "burst": b"\x03" + gone + up + overrun + v6 + v4,
    }


# ICMP ---------------------------------------------------------------------

def icmp_seeds():
    echo4 = struct.pack("!BBHHH", 0, 0, 0, 0x1234, 7) + bytes(8)
    echo6 = struct.pack("!BBHHH", 129, 0, 0, 0x1234, 7) + bytes(8)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(echo4), 1, 0, 64,
                     1, 0, socket.inet_pton(socket.AF_INET, "192.0.2.1"),
                     socket.inet_pton(socket.AF_INET, "192.0.2.2"))
    ip_opt = bytes([0x46]) + ip[1:] + b"\x01\x01\x01\x00"
    return {
        "reply4": b"\x00" + ip + echo4,
        "reply4-options": b"\x00" + ip_opt + echo4,
        "request4": b"\x00" + ip + b"\x08" + echo4[1:],
        "reply6": b"\x01" + echo6,
        "request6": b"\x01" + b"\x80" + echo6[1:],
    }


def main():
    for name, seeds in (("bsd", bsd_seeds()), ("netlink", netlink_seeds()),
                        ("icmp", icmp_seeds())):
        directory = os.path.join(HERE, "corpus", name)
        os.makedirs(directory, exist_ok=True)
        for seed, data in seeds.items():
            with open(os.path.join(directory, seed), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
