"""The local multi-host network: `algo-1..algo-N` reach each other on loopback, and nothing else.

SageMaker gives each host of a job its own machine, with the other hosts' names resolvable.
Locally the hosts' sandboxes share one new network namespace that has only a loopback
interface (no route to the host's network or the internet); host number i gets the address
127.0.1.i, added to that loopback so a framework that looks for "its own" address among the
interfaces (LightGBM's machine list, Gloo, MPI) finds it, and every sandbox gets the same
/etc/hosts naming them all.

NB: the hosts share one port space, unlike on SageMaker: two hosts cannot both listen on
the same port. Frameworks that bind their port on every address (LightGBM binds INADDR_ANY)
need a port per host locally (e.g. base port + host index); SageMaker accepts that too.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from typing import Sequence

from mlbuild.runtime import contract

ADDRESS_BASE = ipaddress.IPv4Address("127.0.1.0")
MAX_HOSTS = 254  # NB: 127.0.1.1 .. 127.0.1.254


def host_address(index: int) -> str:
    """127.0.1.1 for algo-1 (index 0)."""
    if not 0 <= index < MAX_HOSTS:
        raise ValueError(f"host index {index}: the local runner starts at most {MAX_HOSTS} hosts")
    return str(ADDRESS_BASE + index + 1)


def hosts_file(count: int) -> str:
    """The /etc/hosts every sandbox of an N-host job gets."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += [f"{host_address(i)}\t{contract.host_name(i)}" for i in range(count)]
    return "\n".join(lines) + "\n"


# rtnetlink, linux/rtnetlink.h and linux/if_addr.h
_RTM_NEWADDR = 20
_NLM_F_REQUEST, _NLM_F_ACK, _NLM_F_EXCL, _NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
_NLMSG_ERROR = 2
_IFA_ADDRESS, _IFA_LOCAL = 1, 2
_RT_SCOPE_HOST = 254
# NB: the kernel answers an RTM_NEWADDR at once; a bound wait turns a lost reply into an error, not a hang.
_NETLINK_REPLY_TIMEOUT_S = 5.0


def _rtattr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("HH", length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


def newaddr_message(address: str, interface_index: int, seq: int) -> bytes:
    """An RTM_NEWADDR request adding `address`/8 to the interface (what `ip addr add` sends)."""
    packed = socket.inet_aton(address)
    body = struct.pack("BBBBI", socket.AF_INET, 8, 0, _RT_SCOPE_HOST, interface_index)
    body += _rtattr(_IFA_LOCAL, packed) + _rtattr(_IFA_ADDRESS, packed)
    flags = _NLM_F_REQUEST | _NLM_F_ACK | _NLM_F_CREATE | _NLM_F_EXCL
    return struct.pack("IHHII", 16 + len(body), _RTM_NEWADDR, flags, seq, 0) + body


def ack_error(reply: bytes) -> int:
    """The errno of a netlink ACK (0: done)."""
    _length, kind = struct.unpack_from("IH", reply, 0)
    if kind != _NLMSG_ERROR:
        return 0
    (code,) = struct.unpack_from("i", reply, 16)
    return -code


def add_loopback_addresses(addresses: Sequence[str]) -> None:
    """Add the hosts' addresses to `lo` of the current network namespace (needs CAP_NET_ADMIN there)."""
    index = socket.if_nametoindex("lo")
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.settimeout(_NETLINK_REPLY_TIMEOUT_S)
        sock.bind((0, 0))
        for seq, address in enumerate(addresses, start=1):
            sock.send(newaddr_message(address, index, seq))
            try:
                reply = sock.recv(65536)
            except socket.timeout:
                raise OSError(
                    errno.ETIMEDOUT, f"adding {address} to lo: no netlink reply within {_NETLINK_REPLY_TIMEOUT_S:g} s"
                ) from None
            code = ack_error(reply)
            if code not in (0, errno.EEXIST):
                raise OSError(code, f"adding {address} to lo: {os.strerror(code)}")
