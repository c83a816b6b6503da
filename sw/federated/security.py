"""Key material for a federation: a TLS CA and server certificate, and SuperNode keys.

Everything is generated with the ``cryptography`` package into the run directory; private
keys are written with mode 0600.  Nothing here talks to the network.

TLS
    :func:`make_tls` creates a self-signed CA (ECDSA P-384, ``BasicConstraints(ca=True)``)
    and a server certificate it signs for ``127.0.0.1`` / ``localhost`` (subject alternative
    names, ``serverAuth``).  The SuperLink serves with the server certificate and key; the
    SuperNodes and the ``flwr`` CLI verify it against the CA (``--root-certificates``,
    ``root-certificates`` in the Flower configuration).
Node authentication
    :func:`make_node_keys` creates one ECDSA P-384 key pair per SuperNode, private key in
    OpenSSH format (``flower-supernode --auth-supernode-private-key``), public key as an
    OpenSSH line (``flwr supernode register``).  With ``--enable-supernode-auth`` the
    SuperLink accepts only SuperNodes whose public key was registered.
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TlsFiles", "NodeKeys", "make_tls", "make_node_keys"]

_VALIDITY = _dt.timedelta(days=30)


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


@dataclass(frozen=True)
class NodeKeys:
    private_key: Path
    public_key: Path


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_tls(directory: str | os.PathLike, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> TlsFiles:
    """Generate ``ca.pem``/``ca.key`` and ``server.pem``/``server.key`` in ``directory``."""
    directory = Path(directory)
    now = _dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Trident federation CA")])
    ca_cert = (x509.CertificateBuilder()
               .subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now).not_valid_after(now + _VALIDITY)
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                            content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False,
                                            encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
               .sign(ca_key, hashes.SHA384()))
    server_key = ec.generate_private_key(ec.SECP384R1())
    names = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    server_cert = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
                   .issuer_name(ca_name)
                   .public_key(server_key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(now + _VALIDITY)
                   .add_extension(x509.SubjectAlternativeName(names), critical=False)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                  critical=False)
                   .sign(ca_key, hashes.SHA384()))
    files = TlsFiles(directory / "ca.pem", directory / "ca.key", directory / "server.pem", directory / "server.key")
    _write(files.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM))
    _write(files.ca_key, _pem_key(ca_key), private=True)
    _write(files.server_cert, server_cert.public_bytes(serialization.Encoding.PEM))
    _write(files.server_key, _pem_key(server_key), private=True)
    return files


def make_node_keys(directory: str | os.PathLike, name: str) -> NodeKeys:
    """Generate ``NAME`` (OpenSSH private key) and ``NAME.pub`` (OpenSSH public key line)."""
    directory = Path(directory)
    key = ec.generate_private_key(ec.SECP384R1())
    keys = NodeKeys(directory / name, directory / f"{name}.pub")
    _write(keys.private_key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                               serialization.NoEncryption()), private=True)
    _write(keys.public_key, key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                          serialization.PublicFormat.OpenSSH) + b"\n")
    return keys
