# load.py - bounded load, answer classification and spool accounting for
# payhook's fault suite (tests/faults).
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# A Load is a few sender threads posting distinct signed ngn-gateway events
# ("<prefix>-<n>") to one server on 127.0.0.1 or a unix socket, bounded by
# a deadline and a count. Every request is recorded as a Shot: when it was
# sent and answered and how (see classify()). The scenarios then compare
# the answers with what is in the spool (spool_index()).

import json
import os
import re
import socket
import threading
import time

from harness import (CgiResult, ERROR_BODIES, FCGI_STDIN, FcgiConn,
                     body_of, fcgi_begin, fcgi_params, fcgi_record,
                     http_request, ngn_headers, ngn_payload, sign)

ANSWER_RE = re.compile(rb'^\{"status":"(accepted|duplicate)","id":"'
                       rb'([0-9A-Z]{26})"\}$')

# Kinds of answer. "none": the connection ended without an answer (a
# killed worker, a reset); "hung": no answer within the request's bound.
KINDS = ("accepted", "duplicate", "200-malformed", "4xx", "503",
         "503-server", "5xx", "none", "hung")


class Shot:
    """One request: txn, start and end (time.time()), kind, HTTP status
    (None without an answer), answer id for a 2xx."""

    __slots__ = ("txn", "t0", "t1", "kind", "status", "ulid", "detail")

    def __init__(self, txn, t0, t1, kind, status, ulid=None, detail=""):
        self.txn, self.t0, self.t1 = txn, t0, t1
        self.kind, self.status, self.ulid = kind, status, ulid
        self.detail = detail

    @property
    def acked(self):
        return self.kind in ("accepted", "duplicate")

    @property
    def latency(self):
        return self.t1 - self.t0

    def __repr__(self):
        return "<%s %s %s %s %.3fs %s>" % (self.txn, self.kind, self.status,
                                           self.ulid, self.latency,
                                           self.detail[:80])


def classify(status, headers, body):
    """(kind, ulid) of an answer. A 503 is payhook's own only with its
    exact body and Retry-After; any other 503 is the server's."""
    if status == 200:
        m = ANSWER_RE.match(body or b"")
        if m is None:
            return "200-malformed", None
        return m.group(1).decode(), m.group(2).decode()
    if status is not None and 400 <= status < 500:
        return "4xx", None
    if status == 503:
        if body == ERROR_BODIES[503] and headers.get("retry-after") == "30":
            return "503", None
        return "503-server", None
    return "5xx", None


def event(txn):
    """(body, X-Signature) of a fresh signed event for transaction txn."""
    body = body_of(ngn_payload(txn))
    return body, sign(body)


# ---------------------------------------------------------------- transports

def http_send(port, timeout):
    """A send function posting to lighttpd (or any HTTP server) at port."""
    def send(txn, body, signature):
        t0 = time.time()
        headers = ngn_headers(body)
        headers["X-Signature"] = signature
        try:
            r = http_request(port, "POST", "/ngn", body, headers,
                             timeout=timeout)
        except socket.timeout as e:
            return Shot(txn, t0, time.time(), "hung", None, detail=repr(e))
        except Exception as e:          # reset by a killed worker, refused
            return Shot(txn, t0, time.time(), "none", None, detail=repr(e))
        kind, ulid = classify(r.status, r.headers, r.body)
        return Shot(txn, t0, time.time(), kind, r.status, ulid,
                    detail=r.body[:100].decode("utf-8", "replace"))
    return send


def fcgi_send(sock_path, timeout, pause=None):
    """A send function speaking FastCGI to payhook --listen at a unix
    socket. pause: None, or a callable returning seconds to wait between
    the first and the second half of the body (two FCGI_STDIN records),
    so that a signal can land while payhook is reading it."""
    def send(txn, body, signature):
        t0 = time.time()
        wait = pause() if pause else 0
        try:
            status, headers, data, ended = fcgi_exchange(
                sock_path, fcgi_params(body, signature=signature), body,
                t0 + timeout, wait)
        except socket.timeout as e:
            return Shot(txn, t0, time.time(), "hung", None, detail=repr(e))
        except OSError as e:
            return Shot(txn, t0, time.time(), "none", None, detail=repr(e))
        if not ended or status is None:
            return Shot(txn, t0, time.time(), "none", None,
                        detail="no FCGI_END_REQUEST (%d bytes)" % len(data))
        kind, ulid = classify(status, headers, data)
        return Shot(txn, t0, time.time(), kind, status, ulid,
                    detail=data[:100].decode("utf-8", "replace"))
    return send


def fcgi_exchange(sock_path, params, body, deadline, pause):
    """One FastCGI responder request; returns (status, headers, body,
    ended). Raises socket.timeout past deadline."""
    conn = FcgiConn(sock_path, max(0.01, deadline - time.time()))
    try:
        half = len(body) // 2 if pause else len(body)
        first = fcgi_begin(params) + fcgi_record(FCGI_STDIN, body[:half])
        rest = fcgi_record(FCGI_STDIN, body[half:]) if body[half:] else b""
        # False: answered (or gone) before the whole body.
        if conn.write(first):
            if pause:
                time.sleep(pause)
            conn.write(rest + fcgi_record(FCGI_STDIN, b""))
        out, _err, ended = conn.receive(deadline)
    finally:
        conn.close()
    r = CgiResult(0, out, "")
    return r.status, r.headers, r.body, ended


# ---------------------------------------------------------------- load

class Load:
    """Sender threads posting events <prefix>-<n> with send(txn, body,
    signature) until stop(), the deadline or max_events. A sender pauses
    backoff seconds after an answer that is not 2xx (as a provider backs
    off), pace seconds after the others; pause() and resume() hold every
    sender between requests."""

    def __init__(self, send, prefix, senders, seconds, max_events=100000,
                 backoff=0.02, pace=0.0):
        self.send = send
        self.prefix = prefix
        self.senders = senders
        self.deadline = time.time() + seconds
        self.max_events = max_events
        self.backoff = backoff
        self.pace = pace
        self.shots = []
        self.lock = threading.Lock()
        self.next = 0
        self.stopping = threading.Event()
        self.running = threading.Event()
        self.running.set()
        self.threads = []

    def _take(self):
        """The next event's name, "" while paused, None when done. The
        pause is checked under the lock that pause() clears it under, so
        no request starts after pause() has counted those in flight."""
        with self.lock:
            if self.next >= self.max_events:
                return None
            if not self.running.is_set():
                return ""
            self.next += 1
            return "%s-%06d" % (self.prefix, self.next - 1)

    def _sender(self):
        while not self.stopping.is_set() and time.time() < self.deadline:
            if not self.running.wait(0.1):
                continue
            txn = self._take()
            if txn is None:
                return
            if not txn:
                continue
            body, sig = event(txn)
            shot = self.send(txn, body, sig)
            with self.lock:
                self.shots.append(shot)
            if not shot.acked and self.backoff:
                self.stopping.wait(self.backoff)
            elif self.pace:
                self.stopping.wait(self.pace)

    def start(self):
        for _ in range(self.senders):
            t = threading.Thread(target=self._sender, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def pause(self):
        """Stop taking new requests and wait for those in flight."""
        with self.lock:
            self.running.clear()
        in_flight = lambda: self.next - len(self.shots)  # noqa: E731
        end = time.time() + 60
        while in_flight() > 0 and time.time() < end:
            time.sleep(0.02)

    def resume(self):
        self.running.set()

    def stop(self, grace=60):
        self.stopping.set()
        self.running.set()
        end = time.time() + grace
        for t in self.threads:
            t.join(max(0.1, end - time.time()))
        return self.shots

    def alive(self):
        return any(t.is_alive() for t in self.threads)

    def snapshot(self):
        with self.lock:
            return list(self.shots)


def deliver_each(send, txns, threads=4):
    """Deliver each txn's event once more (redelivery); {txn: Shot}."""
    out = {}
    lock = threading.Lock()
    it = iter(list(txns))

    def worker():
        while True:
            with lock:
                txn = next(it, None)
            if txn is None:
                return
            body, sig = event(txn)
            shot = send(txn, body, sig)
            with lock:
                out[txn] = shot
    ts = [threading.Thread(target=worker, daemon=True)
          for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def kinds(shots):
    """{kind: count} with every kind present."""
    n = dict.fromkeys(KINDS, 0)
    for s in shots:
        n[s.kind] = n.get(s.kind, 0) + 1
    return n


# ---------------------------------------------------------------- spool

class SpoolIndex:
    """What a directory's new/ holds: by_txn {txn: [(ulid, name)]},
    by_key {dedup_key: count}, unreadable [names]."""

    def __init__(self, spool_dir):
        self.by_txn, self.by_key, self.unreadable = {}, {}, []
        self.files = 0
        new = os.path.join(spool_dir, "new")
        try:
            names = sorted(os.listdir(new))
        except FileNotFoundError:
            names = []
        for name in names:
            try:
                with open(os.path.join(new, name), "rb") as f:
                    ev = json.loads(f.read().decode("utf-8"))
                txn = ev["raw"]["data"]["transaction_id"]
                key, ulid = ev["dedup_key"], ev["id"]
            except (OSError, ValueError, KeyError, TypeError):
                self.unreadable.append(name)
                continue
            self.files += 1
            self.by_txn.setdefault(txn, []).append((ulid, name))
            self.by_key[key] = self.by_key.get(key, 0) + 1

    def merge(self, other):
        """Add what other holds that this index does not."""
        for txn, files in other.by_txn.items():
            mine = self.by_txn.setdefault(txn, [])
            mine += [f for f in files if f not in mine]

    def has(self, txn, ulid=None):
        ids = [u for u, _n in self.by_txn.get(txn, [])]
        return bool(ids) if ulid is None else ulid in ids

    def extra_copies(self):
        """Files beyond the first per dedup key (at-least-once copies)."""
        return sum(n - 1 for n in self.by_key.values())


def tmp_count(spool_dir):
    try:
        return len(os.listdir(os.path.join(spool_dir, "tmp")))
    except FileNotFoundError:
        return 0
