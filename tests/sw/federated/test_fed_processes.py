import subprocess
import sys
import textwrap
import time
import uuid

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_ssh_private_key, load_ssh_public_key

from trident.sw.federated.processes import ProcessSet, survivors
from trident.sw.federated.security import make_node_keys, make_tls

# a process that forks a grandchild in a new session (like flower-superexec does), then waits
TREE = textwrap.dedent("""
    import subprocess, sys, time
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    time.sleep(300)
""")


def test_shutdown_leaves_no_descendant_even_in_another_session(tmp_path):
    run_id = uuid.uuid4().hex
    procs = ProcessSet(run_id, {"PATH": "/usr/bin:/bin"}, tmp_path)
    procs.spawn("a", [sys.executable, "-c", TREE], tmp_path / "a.log")
    procs.spawn("b", [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                                            "time.sleep(300)"], tmp_path / "b.log")
    deadline = time.monotonic() + 20
    while len(survivors(run_id)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(survivors(run_id)) == 3
    t0 = time.monotonic()
    assert procs.shutdown(grace=1.0) == []
    assert survivors(run_id) == [] and time.monotonic() - t0 < 15


def test_children_die_with_their_parent(tmp_path):
    """PR_SET_PDEATHSIG: a SIGKILLed parent takes its federation processes with it."""
    run_id = uuid.uuid4().hex
    parent = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from trident.sw.federated.processes import ProcessSet
        p = ProcessSet({run_id!r}, {{"PATH": "/usr/bin:/bin"}}, Path({str(tmp_path)!r}))
        p.spawn("sleeper", [sys.executable, "-c", "import time; time.sleep(300)"], Path({str(tmp_path)!r}) / "s.log")
        print("ready", flush=True)
        time.sleep(300)
    """)
    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    assert len(survivors(run_id)) == 1
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while survivors(run_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert survivors(run_id) == []


def test_tls_chain_and_node_keys(tmp_path):
    tls = make_tls(tmp_path / "tls")
    ca = x509.load_pem_x509_certificate(tls.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(tls.server_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "127.0.0.1" in [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert oct(tls.server_key.stat().st_mode & 0o777) == "0o600"
    keys = make_node_keys(tmp_path / "keys", "worker-0")
    private = load_ssh_private_key(keys.private_key.read_bytes(), None)
    public = load_ssh_public_key(keys.public_key.read_bytes())
    assert isinstance(public.curve, ec.SECP384R1) and private.public_key().public_numbers() == public.public_numbers()
