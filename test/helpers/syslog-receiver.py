"""A syslog stand-in for tests: binds a unix datagram socket at argv[1], prints
each datagram as one JSON string a line, and exits after argv[2] datagrams or
argv[3] seconds, whichever comes first. It never outlives its test."""
import json
import os
import socket
import sys
import time

path, wanted, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
deadline = time.monotonic() + limit
received = 0
try:
    while received < wanted:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        print(json.dumps(data.decode("utf-8", "replace")), flush=True)
        received += 1
finally:
    sock.close()
    os.unlink(path)
