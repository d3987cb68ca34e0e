#!/usr/bin/env python3
"""Writes link/order.txt: the functions the server runs at start-up and while idle first, then those of its hottest
requests, so the linker (rust-lld, through build.rs) puts them side by side.

Why: the kernel maps a program's code in around every page it touches (64 KiB at a time). Spread over the whole
binary, the few hundred functions an idle server has run keep some 5 MiB of it resident; side by side, about one.

Run after changes that move start-up code around, with valgrind installed:

    cargo build --release && python3 scripts/link-order.py && cargo build --release

Symbols the next build no longer has are skipped by the linker; the list only orders, it never changes behaviour.
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target", "release", "codepipeline-local")
PIPELINE = os.path.join(ROOT, "fixtures", "bench", "pipeline.json")


def call(port, operation, body):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/",
        data=json.dumps(body).encode(),
        headers={"X-Amz-Target": f"CodePipeline_20150709.{operation}", "Content-Type": "application/x-amz-json-1.1"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=30).read()


def functions_run(port, exercise):
    """The functions (mangled names) the server runs from its start through `exercise`."""
    with tempfile.TemporaryDirectory() as directory:
        out = os.path.join(directory, "callgrind.out")
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={out}", BINARY,
             "--port", str(port), "--log-level", "warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
                break
            except OSError:
                if time.time() > deadline:
                    server.kill()
                    sys.exit("the server did not come up under valgrind")
                time.sleep(0.2)
        exercise(port)
        time.sleep(1)
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
        names = []
        for line in open(out):
            match = re.match(r"c?fn=\(\d+\) (.+)$", line.strip())
            if match and match.group(1) not in names:
                names.append(match.group(1))
        return names


def idle(port):
    call(port, "ListPipelines", {})


def hot(port):
    pipeline = json.load(open(PIPELINE))
    call(port, "CreatePipeline", {"pipeline": pipeline})
    for _ in range(3):
        call(port, "GetPipeline", {"name": pipeline["name"]})
        call(port, "ListPipelines", {"maxResults": 10})
    arn = f"arn:aws:codepipeline:us-east-1:000000000000:{pipeline['name']}"
    call(port, "TagResource", {"resourceArn": arn, "tags": [{"key": "k", "value": "v"}]})


def main():
    defined = set()
    for line in subprocess.run(["nm", "--defined-only", BINARY], capture_output=True, text=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwW":
            defined.add(parts[2])
    first = [n for n in functions_run(45871, idle) if n in defined]
    then = [n for n in functions_run(45872, hot) if n in defined and n not in set(first)]
    os.makedirs(os.path.join(ROOT, "link"), exist_ok=True)
    with open(os.path.join(ROOT, "link", "order.txt"), "w") as f:
        f.write("\n".join(first + then) + "\n")
    print(f"link/order.txt: {len(first)} start-up and idle functions, then {len(then)} of the hottest requests")


if __name__ == "__main__":
    main()
