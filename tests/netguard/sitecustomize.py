"""Network guard for tests: with WMPLAT_NETGUARD=1, a Python process that has this folder on its
PYTHONPATH refuses every connection that would leave the machine (Python imports `sitecustomize`
at start-up). tests/hub_server.py loads this same file to guard the pytest process itself.

A refused attempt raises NetworkBlockedError naming the address, is kept in `blocked`, and is
appended to the file named by WMPLAT_NETGUARD_LOG (if set), so that the test run can fail even
when a client swallows the error. A sub-name of a loopback host (`datasets-server.127.0.0.1`,
which `datasets` asks for) cannot exist anywhere: it gets an immediate "no such name" instead.
"""

import functools
import ipaddress
import os
import socket

LOCAL_NAMES = {"localhost", "ip6-localhost", "ip6-loopback"}
blocked: list[str] = []


class NetworkBlockedError(RuntimeError):
    """A connection to a host other than this machine was attempted under the test guard."""


def _is_loopback(host: str) -> bool:
    """Whether `host` is this machine: a loopback address or name, the unspecified address
    (0.0.0.0, ::, which a connection takes to mean this machine), or an address of one of its
    own network interfaces (Ray's processes reach each other at the machine's address)."""
    host = host.split("%", 1)[0].strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host.lower().rstrip(".") in LOCAL_NAMES
    address = getattr(address, "ipv4_mapped", None) or address
    return address.is_loopback or address.is_unspecified or address in _own_addresses()


@functools.cache
def _own_addresses() -> frozenset:
    """The addresses of this machine's interfaces (Linux: ioctl for IPv4, /proc for IPv6)."""
    found = set()
    try:
        import fcntl
        import struct

        for _, name in socket.if_nameindex():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    packed = fcntl.ioctl(s.fileno(), 0x8915,      # SIOCGIFADDR
                                         struct.pack("256s", name[:15].encode()))
                except OSError:
                    continue
                found.add(ipaddress.ip_address(packed[20:24]))
        with open("/proc/net/if_inet6", encoding="ascii") as lines:
            for line in lines:
                found.add(ipaddress.ip_address(bytes.fromhex(line.split()[0])))
    except (OSError, ImportError, ValueError):
        pass
    return frozenset(found)


def _is_loopback_subname(host: str) -> bool:
    parent = host.lower().rstrip(".").partition(".")[2]
    return bool(parent) and _is_loopback(parent)


def _refuse(what: str) -> None:
    message = f"network access blocked by the test guard (WMPLAT_NETGUARD): {what}"
    blocked.append(message)
    log = os.environ.get("WMPLAT_NETGUARD_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as file:
            file.write(f"{os.getpid()}: {message}\n")
    raise NetworkBlockedError(message)


def _check_host(host, port) -> None:
    if host is None or not isinstance(host, str | bytes):
        return
    host = host.decode() if isinstance(host, bytes) else host
    if host == "" or _is_loopback(host):
        return
    if _is_loopback_subname(host):
        raise socket.gaierror(socket.EAI_NONAME, f"no such name: {host} (test guard)")
    _refuse(f"{host}:{port}")


def _check_address(sock, address) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
        _check_host(address[0], address[1])


def install() -> None:
    """Wrap the socket functions that open connections or resolve names; idempotent."""
    if getattr(socket, "_wmplat_netguard", False):
        return
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex
    getaddrinfo, gethostbyname = socket.getaddrinfo, socket.gethostbyname

    def guarded_connect(self, address):
        _check_address(self, address)
        return connect(self, address)

    def guarded_connect_ex(self, address):
        _check_address(self, address)
        return connect_ex(self, address)

    def guarded_getaddrinfo(host, port, *args, **kwargs):
        _check_host(host, port)
        return getaddrinfo(host, port, *args, **kwargs)

    def guarded_gethostbyname(host):
        _check_host(host, None)
        return gethostbyname(host)

    socket.socket.connect = guarded_connect
    socket.socket.connect_ex = guarded_connect_ex
    socket.getaddrinfo = guarded_getaddrinfo
    socket.gethostbyname = guarded_gethostbyname
    socket._wmplat_netguard = True


if os.environ.get("WMPLAT_NETGUARD") == "1":
    install()
