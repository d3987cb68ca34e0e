#!/usr/bin/env python3
"""Instructions a server build spends per request, counted by valgrind's callgrind.

Timings on a shared machine vary by 10% from run to run; instruction counts vary by about 2%, so this is how two
builds are compared (for example before and after a change):

    cargo build --release
    python3 scripts/instructions-per-request.py target/release/codepipeline-local
    python3 scripts/instructions-per-request.py /tmp/older/codepipeline-local --operation ListPipelines

It starts the binary under callgrind, creates the throughput benchmark's 51 pipelines, sends the requests one after
another on one keep-alive connection, stops the server, and does the same without the requests; the difference,
divided by the number of requests, is what one request costs. Needs valgrind.
"""

import argparse
import os
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BODIES = {
    "GetPipeline": '{"name": "bench"}',
    "ListPipelines": '{"maxResults": 10}',
    "StartPipelineExecution": '{"name": "bench"}',
    "TagResource": '{"resourceArn": "arn:aws:codepipeline:us-east-1:000000000000:bench", "tags": [{"key": "k", "value": "v"}]}',
}


def request(sock, operation, body):
    data = body.encode()
    head = (
        f"POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: CodePipeline_20150709.{operation}\r\n"
        f"Content-Type: application/x-amz-json-1.1\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    sock.sendall(head.encode() + data)
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        buffer += sock.recv(65536)
    head, rest = buffer.split(b"\r\n\r\n", 1)
    length = next(int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length"))
    while len(rest) < length:
        rest += sock.recv(65536)
    return head.split(b" ")[1]


def count(binary, operation, requests):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tempfile.mktemp(prefix="callgrind.")
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary, "--port", str(port),
         "--log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit("the server did not start under valgrind")
                time.sleep(0.05)
        pipeline = open(os.path.join(ROOT, "fixtures/bench/pipeline.json")).read()
        assert request(sock, "CreatePipeline", '{"pipeline": %s}' % pipeline) == b"200"
        for i in range(50):
            other = pipeline.replace('"bench"', '"bench-%02d"' % i)
            assert request(sock, "CreatePipeline", '{"pipeline": %s}' % other) == b"200"
        for _ in range(requests):
            assert request(sock, operation, BODIES[operation]) == b"200"
        sock.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait()
    totals = [l for l in open(out) if l.startswith(("summary:", "totals:"))]
    os.remove(out)
    return int(totals[-1].split()[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binary")
    parser.add_argument("--operation", choices=sorted(BODIES), default="GetPipeline")
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    with_requests = count(args.binary, args.operation, args.requests)
    without = count(args.binary, args.operation, 0)
    per_request = (with_requests - without) / args.requests
    print(f"{args.operation}: {per_request:,.0f} instructions per request ({args.requests} requests)")


if __name__ == "__main__":
    main()
