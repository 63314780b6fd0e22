from __future__ import annotations

import socket
import struct
from typing import Optional

import pytest

from mlbuild.container_run import host_network


def test_addresses_and_hosts_file() -> None:
    assert [host_network.host_address(i) for i in (0, 1, 253)] == ["127.0.1.1", "127.0.1.2", "127.0.1.254"]
    with pytest.raises(ValueError):
        host_network.host_address(254)
    text = host_network.hosts_file(2)
    assert "127.0.1.1\talgo-1\n127.0.1.2\talgo-2\n" in text and text.startswith("127.0.0.1\tlocalhost\n")


def test_newaddr_message_is_what_ip_addr_add_sends() -> None:
    message = host_network.newaddr_message("127.0.1.2", 1, 7)
    length, kind, flags, seq, pid = struct.unpack_from("IHHII", message)
    assert (length, kind, seq, pid) == (len(message), 20, 7, 0) and flags == 0x1 | 0x4 | 0x200 | 0x400
    family, prefix, _flags, scope, index = struct.unpack_from("BBBBI", message, 16)
    assert (family, prefix, scope, index) == (socket.AF_INET, 8, 254, 1)
    # two attributes (IFA_LOCAL, IFA_ADDRESS), each 4 header bytes + the address
    assert message[24:32] == struct.pack("HH", 8, 2) + socket.inet_aton("127.0.1.2")
    assert message[32:40] == struct.pack("HH", 8, 1) + socket.inet_aton("127.0.1.2")


def test_ack_error() -> None:
    ack = struct.pack("IHHII", 36, 2, 0, 1, 0) + struct.pack("i", -17) + b"\0" * 16
    assert host_network.ack_error(ack) == 17
    assert host_network.ack_error(struct.pack("IHHII", 16, 3, 0, 1, 0)) == 0


class _SilentNetlink:
    """A netlink socket whose reply never comes: recv waits out the socket's timeout."""

    def __init__(self, *args: object) -> None:
        self.timeout: Optional[float] = None

    def __enter__(self) -> "_SilentNetlink":
        return self

    def __exit__(self, *args: object) -> None:
        pass

    def settimeout(self, seconds: float) -> None:
        self.timeout = seconds

    def bind(self, address: object) -> None:
        pass

    def send(self, data: bytes) -> int:
        return len(data)

    def recv(self, size: int) -> bytes:
        if self.timeout is None:
            raise AssertionError("recv without a timeout would wait forever")
        raise socket.timeout("timed out")


def test_a_missing_netlink_reply_is_an_error_not_a_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host_network.socket, "socket", _SilentNetlink)
    with pytest.raises(OSError, match=r"adding 127.0.1.1 to lo: no netlink reply within 5 s"):
        host_network.add_loopback_addresses(["127.0.1.1"])
