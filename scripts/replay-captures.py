#!/usr/bin/env python3
"""Replays recorded AWS CodePipeline request/response sequences against the emulator and compares every answer.

Usage: scripts/replay-captures.py CAPTURES_DIR [--binary PATH] [--only NAME] [--verbose]

CAPTURES_DIR holds `.jsonl` captures in the format of the project's reference captures: a `{"meta": ...}` line, then
one call a line with `op` (operation), `l` (label), `p` (request), `s` (status), `o` (response body) or
`e` (`{"code", "msg"}`), `dup` (same answer as an earlier label), `skip` (setup, not evidence) and `svc` (another
service's call, context only; an S3 PutObject of the pipeline's source object is told to the emulator through
`POST /_emulator/source-changes`, so that later executions pick up the new version). Nothing from the captures is kept in this repository; this script only reads them.

Each capture runs against a fresh server. Ids (execution ids, tokens, S3 version ids, ETags, artifact keys) differ
between AWS and the emulator: the first time a response shows an id where the capture shows one, the two are paired,
later requests have the capture's ids replaced by their partners, and every later answer must use the same pairing.
Timestamps are compared for presence only, and the caller ARN (an IAM user on AWS, the account root here) is
normalised. A read that does not match yet is retried for a few seconds, since the emulator settles at its own pace;
the final answer is the one compared.

The result: per capture, how many comparable responses matched exactly, and a diff of each that did not.
"""

import argparse
import copy
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

TIMESTAMP_KEYS = {
    "created", "updated", "startTime", "lastUpdateTime", "lastStatusChange", "approvedAt", "lastChanged",
    "lastTriggered", "expires", "lastUpdatedTime",
}
# Tokens that are ids: UUIDs, S3-style version ids and ETags, git commits, artifact object names.
TOKEN = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|(?<![A-Za-z0-9._-])[A-Za-z0-9._]{32}(?![A-Za-z0-9._-])"
    r"|(?<![0-9a-f])[0-9a-f]{40}(?![0-9a-f])"
    r"|(?<=/)[A-Za-z0-9]{7}(?=\.zip\b)"
)
CALLER = re.compile(r"arn:aws:iam::\d{12}:(user/[A-Za-z0-9+=,.@_-]+|root)")
READ_OPS = ("Get", "List")
# Errors that another service decided (IAM's eventual consistency), which an emulator without IAM cannot reproduce.
OTHER_SERVICE = re.compile(r"not authorized to perform AssumeRole")


class Pairing:
    """Which emulator id stands for which AWS id."""

    def __init__(self):
        self.aws = {}
        self.emu = {}

    def bind(self, aws, emu):
        if isinstance(aws, dict) and isinstance(emu, dict):
            for key in aws.keys() & emu.keys():
                if key not in TIMESTAMP_KEYS:
                    self.bind(aws[key], emu[key])
        elif isinstance(aws, list) and isinstance(emu, list):
            for a, b in zip(aws, emu):
                self.bind(a, b)
        elif isinstance(aws, str) and isinstance(emu, str):
            a_tokens, b_tokens = TOKEN.findall(aws), TOKEN.findall(emu)
            if len(a_tokens) == len(b_tokens):
                for a, b in zip(a_tokens, b_tokens):
                    if a not in self.aws and b not in self.emu:
                        n = len(self.aws)
                        self.aws[a], self.emu[b] = n, n

    def to_emulator(self, value):
        """The request as the emulator must receive it: AWS's ids replaced by their partners."""
        back = {n: token for token, n in self.emu.items()}
        if isinstance(value, dict):
            return {k: self.to_emulator(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.to_emulator(v) for v in value]
        if isinstance(value, str):
            return TOKEN.sub(lambda m: back.get(self.aws.get(m.group(0), -1), m.group(0)), value)
        return value


def normalise(value, ids, strip_type):
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if strip_type and k == "__type":
                continue
            out[k] = "<timestamp>" if k in TIMESTAMP_KEYS and v is not None else normalise(v, ids, strip_type)
        return out
    if isinstance(value, list):
        return [normalise(v, ids, strip_type) for v in value]
    if isinstance(value, str):
        value = CALLER.sub("<caller>", value)
        return TOKEN.sub(lambda m: f"<id{ids[m.group(0)]}>" if m.group(0) in ids else f"<new:{m.group(0)}>", value)
    return value


def diff(a, b, path="$"):
    """Human-readable differences between two normalised values."""
    out = []
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(a.keys() | b.keys()):
            if k not in b:
                out.append(f"{path}.{k}: AWS has {json.dumps(a[k])[:200]}, emulator has nothing")
            elif k not in a:
                out.append(f"{path}.{k}: emulator has {json.dumps(b[k])[:200]}, AWS has nothing")
            else:
                out += diff(a[k], b[k], f"{path}.{k}")
        if not out and list(a.keys()) != list(b.keys()) and path.endswith("configuration") is False:
            pass
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: AWS has {len(a)} items, emulator {len(b)}: {json.dumps(a)[:300]} vs {json.dumps(b)[:300]}")
        else:
            for i, (x, y) in enumerate(zip(a, b)):
                out += diff(x, y, f"{path}[{i}]")
    elif a != b:
        out.append(f"{path}: AWS {json.dumps(a)[:200]}, emulator {json.dumps(b)[:200]}")
    return out


class FakeLambda(http.server.BaseHTTPRequestHandler):
    """Accepts every asynchronous Invoke and never reports back; remembers the jobs it was given."""

    jobs = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            FakeLambda.jobs.append(json.loads(body)["CodePipeline.job"]["id"])
        except (ValueError, KeyError, TypeError):
            pass
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Server:
    def __init__(self, binary, lambda_endpoint):
        args = [binary, "--port", "0", "--action-duration-ms", "100", "--log-level", "warn"]
        if lambda_endpoint:
            args += ["--lambda-endpoint", lambda_endpoint]
        env = dict(os.environ, NO_COLOR="1")
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        for line in self.process.stdout:
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                self.url = match.group(1)
                break
        else:
            raise SystemExit("the server did not start")
        threading.Thread(target=lambda: [None for _ in self.process.stdout], daemon=True).start()

    def call(self, op, params):
        request = urllib.request.Request(
            self.url + "/",
            data=json.dumps(params).encode(),
            headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"CodePipeline_20150709.{op}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                body = response.read()
                return response.status, json.loads(body) if body else None
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def control(self, path, body):
        request = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"{}")

    def stop(self):
        self.process.terminate()
        self.process.wait(5)


def shows_later(pairing, later, actual, raw):
    """Whether the emulator's answer is the one AWS gave to the same request later (AWS's read lag)."""
    trial = copy.deepcopy(pairing)
    trial.bind(later, actual)
    return normalise(later, trial.aws, False) == normalise(actual, trial.emu, not raw)


def expected_of(line, by_label):
    source = by_label[line["dup"]] if "dup" in line else line
    if "e" in source:
        return {"error": source["e"]["code"], "message": source["e"]["msg"]}
    return source.get("o")


def actual_of(status, body):
    if status >= 300:
        kind = (body or {}).get("__type", "").split("#")[-1]
        return {"error": kind, "message": (body or {}).get("message")}
    return body


def s3_source(lines):
    """The (bucket, key) of the first S3 source action the capture's pipelines declare."""
    for line in lines:
        if line.get("op") != "CreatePipeline" or "svc" in line:
            continue
        for stage in line.get("p", {}).get("pipeline", {}).get("stages", [])[:1]:
            for action in stage.get("actions", []):
                if action.get("actionTypeId", {}).get("provider") == "S3":
                    config = action.get("configuration", {})
                    return config.get("S3Bucket"), config.get("S3ObjectKey")
    return None


def replay(path, binary, verbose):
    lines = [json.loads(l) for l in open(path)]
    meta = lines[0].get("meta", {})
    raw = '"__type"' in open(path).read()
    fake = None
    lambda_endpoint = None
    if "lambda" in os.path.basename(path):
        fake = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeLambda)
        threading.Thread(target=fake.serve_forever, daemon=True).start()
        lambda_endpoint = f"http://127.0.0.1:{fake.server_address[1]}"
        FakeLambda.jobs = []
    server = Server(binary, lambda_endpoint)
    pairing = Pairing()
    by_label = {}
    compared, matched, other, failures, ahead = 0, 0, 0, [], []
    by_label_all = {line["l"]: line for line in lines if "l" in line}
    try:
        for index, line in enumerate(lines):
            if index == 0:
                continue
            if "l" in line:
                by_label[line["l"]] = line
            if line.get("svc") == "s3" and line.get("op") == "PutObject":
                # An upload to the pipeline's S3 source object: the emulator learns the object's new version (the
                # capture's own id), without starting anything, since no poll or EventBridge rule reports it there.
                version = (line.get("n") or {}).get("VersionId")
                source = s3_source(lines)
                if version and source:
                    bucket, key = source
                    server.control("/_emulator/source-changes", {"provider": "S3", "bucket": bucket, "key": key,
                                                                 "versionId": version, "startPipelines": False})
                continue
            if "svc" in line or "op" not in line:
                # The job id the fake Lambda received is the one the capture's function saw.
                note = line.get("n")
                if isinstance(note, dict) and "function_event_job_id" in note:
                    deadline = time.time() + 5
                    while not FakeLambda.jobs and time.time() < deadline:
                        time.sleep(0.05)
                    if FakeLambda.jobs:
                        pairing.bind(note["function_event_job_id"], FakeLambda.jobs[-1])
                continue
            op, params = line["op"], pairing.to_emulator(line.get("p", {}))
            if line.get("skip"):
                server.call(op, params)
                time.sleep(0.3)
                continue
            expected = expected_of(line, by_label)
            if "e" in line and OTHER_SERVICE.search(line["e"]["msg"]):
                other += 1
                continue
            deadline = time.time() + (2 if op.startswith(READ_OPS) else 0)
            while True:
                status, body = server.call(op, params)
                actual = actual_of(status, body)
                if status == line["s"] and expected is not None and actual is not None:
                    pairing.bind(expected, actual)
                if expected == {} and actual is None:
                    actual = {}  # boto-style captures cannot tell an empty body from {}
                a = normalise(expected, pairing.aws, False)
                b = normalise(actual, pairing.emu, not raw)
                same = status == line["s"] and a == b
                if same or time.time() >= deadline:
                    break
                time.sleep(0.1)
            compared += 1
            if same:
                matched += 1
            elif any(
                shows_later(pairing, expected_of(other_line, by_label_all), actual, raw)
                for other_line in lines[index + 1 :]
                if other_line.get("op") == op and other_line.get("p") == line.get("p") and "svc" not in other_line
            ):
                ahead.append((line["l"], op))
            else:
                details = [f"status: AWS {line['s']}, emulator {status}"] if status != line["s"] else []
                failures.append((line["l"], op, details + diff(a, b)))
    finally:
        server.stop()
        if fake:
            fake.shutdown()
    name = os.path.basename(path)
    print(
        f"{name}: {matched}/{compared} responses identical; {len(ahead)} more show the state AWS showed a later"
        f" call (AWS's read lag); {other} not compared (another service decided)"
    )
    for label, op in ahead:
        print(f"  ahead: {op} {label}")
    for label, op, lines_ in failures:
        print(f"  {op} {label}")
        for d in lines_[: (100 if verbose else 6)]:
            print(f"      {d}")
    return matched, compared, len(ahead)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("captures")
    parser.add_argument("--binary", default="target/release/codepipeline-local")
    parser.add_argument("--only", help="replay only captures whose file name contains this")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    total_matched = total = total_ahead = 0
    for name in sorted(os.listdir(args.captures)):
        if not name.endswith(".jsonl") or (args.only and args.only not in name):
            continue
        m, c, a = replay(os.path.join(args.captures, name), args.binary, args.verbose)
        total_matched += m
        total += c
        total_ahead += a
    print(
        f"total: {total_matched}/{total} responses identical ({100 * total_matched // max(total, 1)}%);"
        f" {total_ahead} more differ only by AWS's read lag"
    )


if __name__ == "__main__":
    sys.exit(main())
