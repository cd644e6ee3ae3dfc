#!/usr/bin/python3
"""throttle.py - a TCP relay that slows the server-to-client direction.

    throttle.py LISTEN_PORT TARGET_PORT BYTES_PER_SECOND [both]

Relays 127.0.0.1:LISTEN_PORT to 127.0.0.1:TARGET_PORT, byte for byte (TLS
passes through untouched), and sends what the target answers at no more
than BYTES_PER_SECOND; with "both", what the client sends too. Tests use it
to hold a download (or an upload) in flight long enough to act on it halfway.
"""
import socket
import sys
import threading
import time

CHUNK = 16384


def pump(src, dst, rate):
    start, sent = time.monotonic(), 0
    try:
        while True:
            data = src.recv(CHUNK)
            if not data:
                break
            dst.sendall(data)
            sent += len(data)
            if rate:
                ahead = sent / rate - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)
    except OSError:
        pass
    finally:
        # Shut down to wake the other direction's thread, then close: a
        # socket closed with unread data resets the connection, so the
        # target's writes fail now rather than block until we exit.
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for s in (src, dst):
            s.close()


def serve(listen_port, target_port, rate, up_rate):
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", listen_port))
    server.listen(64)
    while True:
        client, _ = server.accept()
        target = socket.create_connection(("127.0.0.1", target_port))
        threading.Thread(target=pump, args=(client, target, up_rate), daemon=True).start()
        threading.Thread(target=pump, args=(target, client, rate), daemon=True).start()


if __name__ == "__main__":
    RATE = int(sys.argv[3])
    serve(int(sys.argv[1]), int(sys.argv[2]), RATE, RATE if sys.argv[4:] == ["both"] else 0)
