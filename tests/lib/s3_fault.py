#!/usr/bin/python3
"""s3_fault.py - a relay in front of an S3 server that can fail presigned GETs.

    s3_fault.py LISTEN_PORT TARGET_PORT MODE_FILE

Relays 127.0.0.1:LISTEN_PORT to 127.0.0.1:TARGET_PORT byte for byte, a
thread per connection. The first request of a connection is read up to the
end of its head; a GET whose request line carries X-Amz-Signature (a
presigned URL, which only the front server uses) is failed as MODE_FILE
says at that moment:
    pass    relayed (also when MODE_FILE is missing)
    reset   the connection is closed without an answer
    500     the relay answers 500 itself
Every other request is relayed untouched, so the responder's own signed
requests (HEAD, PUT, lists) keep working: S3 fails only after the responder
decided to serve from it. One line per failed request goes to stdout.
"""
import socket
import sys
import threading

from throttle import pump  # the relay of tests/lib/throttle.py, unthrottled


def mode(path):
    try:
        with open(path) as f:
            return f.read().strip() or "pass"
    except OSError:
        return "pass"


def read_head(sock):
    """The bytes up to the end of the first request head, and what came after."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    return head + b"\r\n\r\n", rest


def fail(client, how, line):
    print("failed %s: %s" % (how, line.split(b" ")[1][:80].decode("ascii", "replace")), flush=True)
    if how == "500":
        body = b"<Error><Code>InternalError</Code></Error>"
        client.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: %d\r\n"
                       b"Connection: close\r\n\r\n%s" % (len(body), body))


def serve(client, target, mode_file):
    """Only a connection's first request is judged: the front server opens one
    per presigned GET, and the responder's kept connections carry none."""
    upstream = None
    try:
        head, rest = read_head(client)
        if head is None:
            return
        line = head.split(b"\r\n", 1)[0]
        how = mode(mode_file)
        if line.startswith(b"GET ") and b"X-Amz-Signature=" in line and how != "pass":
            fail(client, how, line)
            return
        upstream = socket.create_connection(("127.0.0.1", target), timeout=120)
        upstream.sendall(head + rest)
        back = threading.Thread(target=pump, args=(upstream, client, 0), daemon=True)
        back.start()
        pump(client, upstream, 0)  # shuts both sockets down and closes them
        back.join()
    except OSError:
        pass
    finally:
        client.close()  # again is harmless: a closed socket's close does nothing
        if upstream is not None:
            upstream.close()


def main():
    port, target, mode_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(64)
    while True:
        client, _ = srv.accept()
        threading.Thread(target=serve, args=(client, target, mode_file), daemon=True).start()


if __name__ == "__main__":
    main()
