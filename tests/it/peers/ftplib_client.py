"""FTPS scenarios driven by Python's stock ftplib, as field-station scripts use
it. Usage: ftplib_client.py SCENARIO HOST PORT USER PASSWORD [ARGS...]
Prints "ok" and exits 0 when every check holds; any failure raises."""

import ftplib
import io
import os
import random
import socket
import ssl
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor


def context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class ReusingFTP_TLS(ftplib.FTP_TLS):
    """ftplib that resumes the control connection's TLS session on data
    connections (what servers requiring session reuse need)."""

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(
                conn, server_hostname=self.host, session=self.sock.session)
        return conn, size


def connect(host, port, user, password, reuse=False):
    cls = ReusingFTP_TLS if reuse else ftplib.FTP_TLS
    ftp = cls(context=context())
    ftp.connect(host, port, timeout=30)
    ftp.login(user, password)
    ftp.prot_p()
    return ftp


def roundtrip(host, port, user, password, reuse="no"):
    ftp = connect(host, port, user, password, reuse == "reuse")
    ftp.mkd("field")
    files = {
        "empty.bin": b"",
        "small.txt": b"hello\r\nworld\n",
        "big.bin": os.urandom(3 * 1024 * 1024 + 17),
        "name with spaces.dat": os.urandom(1000),
    }
    for name, data in files.items():
        ftp.storbinary(f"STOR field/{name}", io.BytesIO(data))
    names = sorted(os.path.basename(n) for n in ftp.nlst("field"))
    assert names == sorted(files), names
    facts = {name: f for name, f in ftp.mlsd("field")}
    for name, data in files.items():
        assert facts[name]["type"] == "file", facts
        assert int(facts[name]["size"]) == len(data), (name, facts[name])
        got = io.BytesIO()
        ftp.retrbinary(f"RETR field/{name}", got.write)
        assert got.getvalue() == data, name
    assert ftp.size("field/big.bin") == len(files["big.bin"])
    tail = io.BytesIO()
    ftp.retrbinary("RETR field/big.bin", tail.write, rest=1000)
    assert tail.getvalue() == files["big.bin"][1000:]
    ftp.rename("field/small.txt", "field/renamed.txt")
    ftp.delete("field/renamed.txt")
    ftp.cwd("field")
    assert ftp.pwd() == "/field", ftp.pwd()
    lines = []
    ftp.retrlines("LIST", lines.append)
    assert any(line.endswith(" big.bin") for line in lines), lines
    ftp.cwd("/")
    ftp.quit()


def expect_error(code, call, *args):
    try:
        call(*args)
    except ftplib.Error as error:
        assert str(error).startswith(code), (code, str(error))
        return
    raise AssertionError(f"expected {code}")


def protection(host, port, user, password):
    """No data connection without PROT P, however it is opened."""
    ftp = ftplib.FTP_TLS(context=context())
    ftp.connect(host, port, timeout=30)
    ftp.auth()
    ftp.login(user, password)
    for passive_command in ("PASV", "EPSV"):
        ftp.sendcmd(passive_command)
        expect_error("521", ftp.sendcmd, "LIST")
        expect_error("521", ftp.sendcmd, "STOR clear.txt")
    ftp.sendcmd("PBSZ 0")
    expect_error("534", ftp.sendcmd, "PROT C")
    expect_error("533", ftp.sendcmd, "CCC")
    ftp.prot_p()
    # A client that asked for PROT P but then speaks clear text on the data
    # connection: the handshake fails, nothing is stored.
    reply = ftp.sendcmd("EPSV")
    data_port = int(reply.split("|")[3])
    raw = socket.create_connection((host, data_port))
    ftp.putcmd("STOR clear.txt")
    assert ftp.getresp().startswith("150")
    raw.sendall(b"clear text that must not land\r\n" * 10)
    raw.close()
    expect_error("425", ftp.voidresp)
    assert "clear.txt" not in ftp.nlst(), ftp.nlst()
    ftp.quit()
    # USER before AUTH TLS is refused.
    plain = ftplib.FTP()
    plain.connect(host, port, timeout=30)
    expect_error("530", plain.sendcmd, f"USER {user}")
    plain.close()


def truncate(host, port, user, password):
    """An upload whose data connection ends without close_notify is refused and removed."""
    ftp = connect(host, port, user, password)
    conn = ftp.transfercmd("STOR cut.bin")
    conn.sendall(os.urandom(300_000))
    conn.shutdown(socket.SHUT_RDWR)  # TCP FIN with no TLS close_notify
    conn.close()
    expect_error("426", ftp.voidresp)
    assert "cut.bin" not in ftp.nlst(), ftp.nlst()
    # The session goes on.
    ftp.storbinary("STOR whole.bin", io.BytesIO(b"x" * 1000))
    ftp.quit()


def hijack(host, port, user, password):
    """With session reuse required, a stranger on the client's address who
    reaches the passive port first gets nothing, and the owner is told."""
    ftp = connect(host, port, user, password, reuse=True)
    secret = os.urandom(10_000)
    ftp.storbinary("STOR secret.bin", io.BytesIO(secret))
    reply = ftp.sendcmd("EPSV")
    data_port = int(reply.split("|")[3])
    raw = socket.create_connection((host, data_port), timeout=30)
    ftp.putcmd("RETR secret.bin")
    assert ftp.getresp().startswith("150")
    stolen = b""
    try:
        stranger = context().wrap_socket(raw)  # a full handshake of its own
        stolen = stranger.recv(65536)
    except (ssl.SSLError, OSError):
        pass
    assert stolen == b"", "the stranger got data"
    expect_error("425", ftp.voidresp)
    # The owner, resuming its own session, still gets the file.
    got = io.BytesIO()
    ftp.retrbinary("RETR secret.bin", got.write)
    assert got.getvalue() == secret
    ftp.quit()


def refused_without_reuse(host, port, user, password):
    """Stock ftplib (no session resumption) is refused when reuse is required."""
    ftp = connect(host, port, user, password)
    expect_error("425", ftp.nlst)
    ftp.quit()


def load(host, port, user, password, sessions="2000", clients="50"):
    """Many sessions at once: AUTH TLS, sign-in, a 64 KiB upload, QUIT."""
    payload = os.urandom(64 * 1024)
    failures = []

    def one(i):
        try:
            ftp = connect(host, port, user, password)
            ftp.storbinary(f"STOR load-{i}.bin", io.BytesIO(payload))
            ftp.quit()
        except Exception as error:  # noqa: BLE001 - every failure is counted
            failures.append(f"{i}: {error!r}")

    started = time.monotonic()
    with ThreadPoolExecutor(int(clients)) as pool:
        list(pool.map(one, range(int(sessions))))
    took = time.monotonic() - started
    assert not failures, f"{len(failures)} failures, first: {failures[:3]}"
    print(f"{sessions} sessions in {took:.1f}s")


def fuzz(host, port, user, password, count="1000"):
    """Random bytes on the control port and on passive ports: every command
    is answered and the server goes on serving."""
    rng = random.Random(7)
    count = int(count)
    per_connection = 50
    for start in range(0, count, per_connection):
        sock = socket.create_connection((host, port), timeout=30)
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"220")
        for _ in range(per_connection):
            line = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
            line = line.replace(b"\n", b" ")
            sock.sendall(line + b"\r\n")
        sock.sendall(b"NOOP\r\n")
        replies = 0
        while True:
            reply = reader.readline()
            assert reply, "the server closed the connection early"
            if reply[3:4] == b" ":
                replies += 1
            if reply.startswith(b"200 NOOP") or reply.startswith(b"421"):
                break
        assert replies >= per_connection, replies
        sock.close()
    ftp = connect(host, port, user, password)
    for _ in range(count):
        reply = ftp.sendcmd("EPSV")
        data_port = int(reply.split("|")[3])
        garbage = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 600)))
        raw = socket.create_connection((host, data_port))
        raw.sendall(garbage)
        raw.close()
        ftp.putcmd("NLST")
        reply = ftp.getline()
        if reply.startswith("150"):
            reply = ftp.getline()
        assert reply.startswith("425"), reply
    ftp.storbinary("STOR after-fuzz.bin", io.BytesIO(b"still serving"))
    got = io.BytesIO()
    ftp.retrbinary("RETR after-fuzz.bin", got.write)
    assert got.getvalue() == b"still serving"
    ftp.quit()


def in_flight(host, port, user, password):
    """What other sessions can do to an upload in progress: a new file is
    invisible until complete, a file being appended to cannot be deleted or
    renamed (nor its folder), and REST past the end is refused."""
    a = connect(host, port, user, password)
    b = connect(host, port, user, password)
    b.mkd("logs")
    b.storbinary("STOR logs/log.txt", io.BytesIO(b"start\n"))
    conn = a.transfercmd("STOR fresh.bin")
    conn.sendall(os.urandom(1024 * 1024))
    listed = b.nlst()
    assert "fresh.bin" not in listed and not any(".part" in n for n in listed), listed
    expect_error("550", b.delete, "fresh.bin")
    b.storbinary("STOR fresh.bin", io.BytesIO(b"second writer"))
    conn.sendall(os.urandom(1024 * 1024))
    conn.unwrap()
    conn.close()
    a.voidresp()
    assert a.size("fresh.bin") == 2 * 1024 * 1024, "the last to finish wins"
    conn = a.transfercmd("APPE logs/log.txt")
    conn.sendall(b"x" * 100_000)
    expect_error("450", b.delete, "logs/log.txt")
    expect_error("450", b.rename, "logs/log.txt", "moved.txt")
    expect_error("450", b.rename, "logs", "logs2")
    expect_error("450", b.rmd, "logs")
    conn.unwrap()
    conn.close()
    a.voidresp()
    assert a.size("logs/log.txt") == 6 + 100_000
    for command in ("STOR", "RETR"):
        a.sendcmd("EPSV")
        a.sendcmd("REST 1099511627776")
        expect_error("554", a.sendcmd, f"{command} logs/log.txt")
    a.sendcmd("REST 10")
    expect_error("554", a.sendcmd, "STOR nothing-here.bin")
    assert "nothing-here.bin" not in a.nlst()
    expect_error("501", a.sendcmd, "REST -5")
    expect_error("501", a.sendcmd, "REST lots")
    a.voidcmd("NOOP")
    a.quit()
    b.quit()


def racing(host, port, user, password, rounds="30"):
    """Sessions of one user overwriting, appending, deleting and renaming the
    same names at once; the usage is checked against the disk afterwards."""
    done = {"store": 0, "append": 0, "delete": 0, "rename": 0}
    errors = []
    writers_done = threading.Event()

    def worker(kind, seed):
        rng = random.Random(seed)
        writer = kind in ("store", "append")
        try:
            ftp = connect(host, port, user, password)
            step = 0
            while (step < int(rounds)) if writer else not writers_done.is_set():
                step += 1
                if not writer:
                    time.sleep(rng.random() / 50)
                name = f"r{rng.randrange(3)}.bin"
                try:
                    if kind == "store":
                        ftp.storbinary(f"STOR {name}", io.BytesIO(os.urandom(rng.randrange(1, 300_000))))
                    elif kind == "append":
                        ftp.storbinary(f"APPE {name}", io.BytesIO(os.urandom(rng.randrange(1, 50_000))))
                    elif kind == "delete":
                        ftp.delete(name)
                    else:
                        ftp.rename(name, f"r{rng.randrange(3, 5)}.bin")
                        ftp.rename(f"r{rng.randrange(3, 5)}.bin", f"r{rng.randrange(3)}.bin")
                    done[kind] += 1
                except ftplib.error_perm as error:
                    assert str(error).startswith("550"), error  # already gone
                except ftplib.error_temp as error:
                    assert str(error).startswith("450"), error  # busy
            ftp.quit()
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(f"{kind}: {error!r}")

    kinds = ["store", "store", "append", "delete", "rename", "rename", "store"]
    threads = [threading.Thread(target=worker, args=(kind, i)) for i, kind in enumerate(kinds)]
    for thread in threads:
        thread.start()
    for thread, kind in zip(threads, kinds):
        if kind in ("store", "append"):
            thread.join()
    writers_done.set()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert all(count > 0 for count in done.values()), done
    print(done)


def file_quota(host, port, user, password):
    """A file-count quota of three: the fourth new file is refused before
    any byte moves, and a delete makes room again."""
    ftp = connect(host, port, user, password)
    for n in range(3):
        ftp.storbinary(f"STOR f{n}.bin", io.BytesIO(b"x"))
    expect_error("552", ftp.storbinary, "STOR f3.bin", io.BytesIO(b"x"))
    expect_error("552", ftp.storbinary, "APPE f4.bin", io.BytesIO(b"x"))
    ftp.storbinary("STOR f0.bin", io.BytesIO(b"replaced"))
    ftp.delete("f1.bin")
    ftp.storbinary("STOR f3.bin", io.BytesIO(b"x"))
    assert sorted(ftp.nlst()) == ["f0.bin", "f2.bin", "f3.bin"], ftp.nlst()
    ftp.quit()


def sign_in(host, port, user, password, expect="230"):
    """One sign-in; the reply code must start with `expect`."""
    ftp = ftplib.FTP_TLS(context=context())
    ftp.connect(host, port, timeout=30)
    try:
        reply = ftp.login(user, password)
    except ftplib.Error as error:
        reply = str(error)
    assert reply.startswith(expect), (expect, reply)
    try:
        ftp.quit()
    except (ftplib.Error, OSError, EOFError):
        pass  # a 421 already closed the session


def lockout(host, port, user, password, allowed="5"):
    """Wrong passwords: 530 up to the limit, then 421 and a closed session,
    for the right password as well."""
    for _ in range(int(allowed)):
        sign_in(host, port, user, "wrong " + password, expect="530")
    sign_in(host, port, user, "wrong " + password, expect="421")
    sign_in(host, port, user, password, expect="421")


def abort(host, port, user, password):
    """ABOR in the middle of an upload and of a download: 426 then 226, the
    partial upload gone, the session usable. QUIT during an upload waits for
    it: 226, then 221."""
    ftp = connect(host, port, user, password)
    ftp.storbinary("STOR keep.bin", io.BytesIO(os.urandom(64 * 1024 * 1024)))
    conn = ftp.transfercmd("STOR partial.bin")
    conn.sendall(os.urandom(2 * 1024 * 1024))
    ftp.putcmd("ABOR")
    first, second = ftp.getline(), ftp.getline()
    assert first.startswith("426") and second.startswith("226"), (first, second)
    conn.close()
    conn = ftp.transfercmd("RETR keep.bin")
    conn.recv(1024)
    ftp.putcmd("ABOR")
    first, second = ftp.getline(), ftp.getline()
    assert first.startswith("426") and second.startswith("226"), (first, second)
    conn.close()
    assert ftp.nlst() == ["keep.bin"], ftp.nlst()
    conn = ftp.transfercmd("STOR last.bin")
    conn.sendall(b"z" * 100_000)
    conn.unwrap()
    conn.close()
    ftp.putcmd("QUIT")
    first, second = ftp.getline(), ftp.getline()
    assert first.startswith("226") and second.startswith("221"), (first, second)
    again = connect(host, port, user, password)
    assert again.size("last.bin") == 100_000
    again.quit()


def signed_out(host, port, user, password):
    """Signs in, says "ready", waits for a line on stdin (the test changes the
    account meanwhile), then expects the next command to end the session."""
    ftp = connect(host, port, user, password)
    print("ready", flush=True)
    sys.stdin.readline()
    expect_error("421", ftp.nlst)


def active(host, port, user, password, enabled="on"):
    """Active mode (EPRT, then PORT): the server connects back to us."""
    ftp = connect(host, port, user, password)
    ftp.set_pasv(False)
    data = os.urandom(300_000)
    if enabled != "on":
        expect_error("502", ftp.storbinary, "STOR active.bin", io.BytesIO(data))
        ftp.quit()
        return
    ftp.storbinary("STOR active.bin", io.BytesIO(data))
    got = io.BytesIO()
    ftp.retrbinary("RETR active.bin", got.write)
    assert got.getvalue() == data
    expect_error("501", ftp.sendcmd, "PORT 10,9,8,7,200,1")
    expect_error("501", ftp.sendcmd, "EPRT |1|127.0.0.1|80|")
    ftp.quit()


def undo_races(host, port, user, password, rounds="10"):
    """Uploads undone while their last write may still be landing (no
    close_notify), and ABOR racing an upload's commit: whatever each ends as,
    the usage must match the disk (checked by the test)."""
    ftp = connect(host, port, user, password)
    ftp.storbinary("STOR a.bin", io.BytesIO(b"a" * 1000))
    for _ in range(int(rounds)):
        conn = ftp.transfercmd("APPE a.bin")
        conn.sendall(os.urandom(3 * 1024 * 1024))
        conn.shutdown(socket.SHUT_RDWR)  # no close_notify: a truncation
        conn.close()
        expect_error("426", ftp.voidresp)
    assert ftp.size("a.bin") == 1000, ftp.size("a.bin")
    for n in range(int(rounds)):
        conn = ftp.transfercmd("APPE a.bin" if n % 2 else f"STOR b{n}.bin")
        conn.sendall(os.urandom(1024 * 1024))
        conn.unwrap()
        conn.close()
        ftp.putcmd("ABOR")
        first, second = ftp.getline(), ftp.getline()
        assert first[:3] in ("226", "426") and second[:3] in ("225", "226"), (first, second)
    ftp.quit()


if __name__ == "__main__":
    scenario, host, port, user, password, *rest = sys.argv[1:]
    globals()[scenario](host, int(port), user, password, *rest)
    print("ok")
