"""Where an SMTP datasource may connect (server-side request forgery guard).

Checked when a datasource is saved and again at every connection; the connection then
goes to the address that was checked, so a DNS answer that changes in between cannot
redirect it.
"""

from __future__ import annotations

import ipaddress
import re
import socket

from django.conf import settings

from datasources.errors import FieldError, PluginError, TransientError, quoted

# Cloud metadata endpoints, refused whatever the settings say.
_METADATA_NAMES = {
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.azure.com",
}
_METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("100.100.100.200"),
    ipaddress.ip_address("168.63.129.16"),
    ipaddress.ip_address("fd00:ec2::254"),
}
_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$", re.I)
_NUMERIC_LOOKING = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+))*$", re.I)


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_host_syntax(host: str) -> None:
    """Refuse what is not a plain host name or a canonical IP address."""
    field = "host"
    if not host:
        raise FieldError(field, "Host is required.")
    address = _literal(host)
    if address is None:
        if _NUMERIC_LOOKING.match(host):
            raise FieldError(
                field,
                f"Host {quoted(host)} is not a valid address: write an IPv4 address as four "
                "decimal numbers (e.g. 192.0.2.10).",
            )
        if not _HOSTNAME.match(host):
            raise FieldError(
                field, f"Host {quoted(host)} is not a valid host name (no scheme, path or spaces)."
            )
        if host.lower().rstrip(".") in _METADATA_NAMES:
            raise FieldError(
                field, f"Host {quoted(host)} is a cloud metadata service and is refused."
            )
        return
    check_address(address, host)


def check_address(address, host: str) -> None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    why = None
    if address in _METADATA_ADDRESSES:
        why = "is a cloud metadata service"
    elif address.is_link_local:
        why = "is a link-local address"
    elif address.is_unspecified:
        why = "is an unspecified address"
    elif address.is_multicast or address.is_reserved:
        why = "is a multicast or reserved address"
    elif address.is_loopback:
        if not settings.KILN_SMTP_ALLOW_LOOPBACK:
            why = "is a loopback address, refused by this server's settings"
    elif not address.is_global and not settings.KILN_SMTP_ALLOW_PRIVATE:
        why = "is a private address, refused by this server's settings"
    if why:
        shown = host if host.strip("[]") == str(address) else f"{host} ({address})"
        raise FieldError("host", f"Host {shown} {why}.")


def _devmailbox_port(host: str, port: int) -> bool:
    """The dev mailbox listens on loopback on a port of its own choosing: a datasource
    pointing there must work whatever KILN_SMTP_PORTS says, but only on loopback."""
    if not settings.KILN_DEVMAILBOX or port != settings.KILN_DEVMAILBOX_PORT:
        return False
    if host.lower().rstrip(".") == "localhost":
        return True
    address = _literal(host)
    return address is not None and address.is_loopback


def check_port(port: int, host: str = "") -> None:
    allowed = settings.KILN_SMTP_PORTS
    if "any" in allowed or str(port) in allowed or _devmailbox_port(host, port):
        return
    shown = ", ".join(allowed)
    if settings.KILN_DEVMAILBOX:
        shown += f"; and {settings.KILN_DEVMAILBOX_PORT}, the dev mailbox's, on loopback"
    raise FieldError("port", f"Port {port} is not an SMTP port this server allows ({shown}).")


def resolve(host: str, port: int) -> list[tuple[int, str]]:
    """Check ``host`` and ``port`` and return the ``(family, address)`` pairs to try."""
    check_host_syntax(host)
    check_port(port, host)
    # A port allowed only as the dev mailbox's must reach loopback, whatever DNS says.
    devmailbox_only = (
        "any" not in settings.KILN_SMTP_PORTS and str(port) not in settings.KILN_SMTP_PORTS
    )
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise _dns_error(host, exc) from None
    addresses: list[tuple[int, str]] = []
    for family, _type, _proto, _name, sockaddr in infos:
        ip = sockaddr[0]
        address = ipaddress.ip_address(ip)
        check_address(address, host)
        if devmailbox_only and not address.is_loopback:
            raise FieldError(
                "port", f"Port {port} is allowed only for the dev mailbox on loopback."
            )
        if (family, str(ip)) not in addresses:
            addresses.append((family, str(ip)))
    return addresses


def _dns_error(host: str, exc: socket.gaierror) -> PluginError:
    """A failed lookup of ``host``: temporary (EAI_AGAIN: the resolver timed out or its
    server answered SERVFAIL) is retried like a refused connection; any other answer
    (EAI_NONAME: no such name) is a mistake in the host field that no retry fixes."""
    reason = exc.strerror or str(exc)
    if exc.errno == socket.EAI_AGAIN:
        return TransientError(
            f"Could not resolve the host name {quoted(host)} for now ({reason}); "
            "the DNS server did not answer.",
            field="host",
            code="dns",
        )
    return PluginError(
        f"Could not resolve the host name {quoted(host)}: {reason}.", field="host", code="dns"
    )
