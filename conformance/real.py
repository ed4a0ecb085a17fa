"""Drive real brokers through fixed situations and write the counts as JSON.

    python conformance/real.py [--only NAME[,NAME...]] [--out FILE] [--list]

Starts only the brokers the selected situations need (see brokers.py), runs
each situation with fresh queue / stream names under a per-situation
watchdog, and writes {situation: {count: int}} (sorted keys, indent 2) to
--out (default target/conformance/real.json).  Counts only, never timings.

A situation that cannot finish keeps what it counted and adds "timed_out": 1;
one that fails adds "error": 1.  The exit code is 1 if any did either.

Message bodies are their sequence numbers "1", "2", ... (space padded to the
requested size).  Consumers that must die like a crashed process run as a
child process (this file with the hidden --child mode) and leave with
os._exit(1); the parent then observes the broker.

The broker-restart situations (SHARED) are generators: each sets up, yields
the broker actions it needs ("stop" / "start": a clean full node restart;
"crash": SIGKILL of beam.smp, then start), and inspects the broker after
them.  The selected ones of a group run in step, so one restart serves them
all (run_group); each keeps its own queue, connections and counts, and the
broker is running again afterwards for the situations that follow.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import brokers  # noqa: E402

logging.getLogger("pika").setLevel(logging.CRITICAL)
logging.getLogger("nats").setLevel(logging.CRITICAL)

RUN_ID = uuid.uuid4().hex[:6]
_names = 0


# ---------------------------------------------------------------- helpers

class Watchdog(Exception):
    """Raised by SIGALRM when a situation overruns its wall-time budget."""


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.end


def fresh(base: str) -> str:
    global _names
    _names += 1
    return f"{base}-{RUN_ID}-{_names}"


def body(i: int, size: int | None = None) -> bytes:
    b = str(i).encode()
    return b + b" " * (size - len(b)) if size and size > len(b) else b


def seq(data: bytes) -> int:
    return int(data)  # int() ignores the padding spaces


def consecutive_ascending(xs: list[int]) -> int:
    return int(all(b == a + 1 for a, b in zip(xs, xs[1:])))


def requeue_counts(c: dict, seqs: list[int], others_acked: int) -> None:
    """The R3/J3 counts from the delivery order `seqs` (1 is the poison)."""
    c["poison_deliveries"] = seqs.count(1)
    c["others_acked"] = others_acked
    first_other = next((i for i, n in enumerate(seqs) if n != 1), len(seqs))
    c["deliveries_before_first_other"] = seqs[:first_other].count(1)
    poison_at = [i for i, n in enumerate(seqs) if n == 1]
    c["poison_redelivered_after"] = (
        poison_at[1] - poison_at[0] - 1 if len(poison_at) >= 2 else -1
    )


def run_child(kind: str, limit: float, **args) -> int | None:
    """Run this file in --child mode; kill it if it overruns. Returns its exit code."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", kind, json.dumps(args)]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    try:
        return p.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        return None
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def log_lines(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [ln.split() for ln in path.read_text().splitlines() if ln.strip()]


def child_log(name: str) -> Path:
    d = brokers.TARGET / "children"
    d.mkdir(parents=True, exist_ok=True)
    p = d / f"{name}.log"
    p.unlink(missing_ok=True)
    return p


# ---------------------------------------------------------------- RabbitMQ helpers

def rconnect():
    import pika
    return pika.BlockingConnection(pika.ConnectionParameters(
        host="127.0.0.1", port=brokers.RABBIT_PORT, heartbeat=30,
        blocked_connection_timeout=30, socket_timeout=5, connection_attempts=3,
        retry_delay=0.5,
    ))


def persistent():
    import pika
    return pika.BasicProperties(delivery_mode=2)


def declare(ch, q: str, qtype: str = "classic", **args) -> None:
    arguments = dict(args)
    if qtype == "quorum":
        arguments["x-queue-type"] = "quorum"
    ch.queue_declare(q, durable=True, arguments=arguments)


def dlq_args(dlq: str, limit: int | None) -> dict:
    a = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}
    if limit is not None:
        a["x-delivery-limit"] = limit
    return a


def qstat(conn, q: str) -> tuple[int, int]:
    """(ready message_count, consumer_count) by a passive declare on its own channel."""
    ch = conn.channel()
    try:
        ok = ch.queue_declare(q, passive=True)
        return ok.method.message_count, ok.method.consumer_count
    finally:
        if ch.is_open:
            ch.close()


def publish(ch, q: str, n: int, size: int | None = None) -> None:
    props = persistent()
    for i in range(1, n + 1):
        ch.basic_publish("", q, body(i, size), props)


def wait_until(conn, q: str, pred, limit: float) -> tuple[int, int] | None:
    """Poll qstat until pred(ready, consumers); None if the bound ran out."""
    dl = Deadline(limit)
    while True:
        st = qstat(conn, q)
        if pred(*st):
            return st
        if dl.expired():
            return None
        conn.sleep(0.05)


def publish_and_wait(conn, q: str, n: int, size: int | None = None) -> None:
    ch = conn.channel()
    publish(ch, q, n, size)
    ch.close()
    if wait_until(conn, q, lambda ready, _: ready >= n, 30) is None:
        raise RuntimeError(f"queue {q} never reached {n} ready messages")


def wait_stable(conn, q: str, limit: float = 10) -> tuple[int, bool]:
    """Wait until q has no consumer and the same ready count three polls in a row."""
    dl = Deadline(limit)
    last, same = None, 0
    while not dl.expired():
        ready, consumers = qstat(conn, q)
        if consumers == 0 and ready == last:
            same += 1
            if same >= 2:
                return ready, True
        else:
            same = 0
        last = ready
        conn.sleep(0.2)
    return (last or 0), False


# ---------------------------------------------------------------- children

def consume_rest(c: dict, ch, q: str, acked: set[int], total: int, limit: float,
                 idle: float = 0.5, stop_when_idle: bool = False) -> tuple[list[int], list[int]]:
    """A manual-ack consumer (prefetch 10) on `ch` that acks what it gets
    until `total` distinct bodies are in `acked`, or (with stop_when_idle)
    nothing comes for `idle` seconds; marks "timed_out" past `limit`.
    Returns the bodies in delivery order and those flagged redelivered."""
    ch.basic_qos(prefetch_count=10)
    order: list[int] = []
    redelivered: list[int] = []
    dl = Deadline(limit)
    for m, p, b in ch.consume(q, inactivity_timeout=idle):
        if dl.expired():
            c["timed_out"] = 1
            break
        if m is None:
            if stop_when_idle:
                break
            continue
        n = seq(b)
        order.append(n)
        if m.redelivered:
            redelivered.append(n)
        ch.basic_ack(m.delivery_tag)
        acked.add(n)
        if len(acked) >= total:
            break
    ch.cancel()
    return order, redelivered


def child_main(kind: str, args: dict) -> None:
    """Hidden mode: a consumer that dies like a crashed process (os._exit)."""
    conn = rconnect()
    ch = conn.channel()
    log = open(args["log"], "a", buffering=1)
    dl = Deadline(args.get("limit", 20))
    q = args["queue"]

    def die(code: int = 1):
        log.flush()
        os._exit(code)

    if kind == "manual-ack-kill":
        ch.basic_qos(prefetch_count=args["prefetch"])
        for m, p, b in ch.consume(q, inactivity_timeout=0.5):
            if dl.expired():
                die(3)
            if m is None:
                continue
            n = seq(b)
            if n == args["die_on"]:
                log.write(f"die {n}\n")
                die()
            ch.basic_ack(m.delivery_tag)
            log.write(f"ack {n}\n")

    elif kind == "auto-ack-kill":
        ch.basic_qos(prefetch_count=1)  # ignored by the broker for auto-ack consumers
        handled = 0
        for m, p, b in ch.consume(q, auto_ack=True, inactivity_timeout=0.5):
            if dl.expired():
                die(3)
            if m is None:
                continue
            time.sleep(0.001)
            handled += 1
            log.write(f"got {seq(b)}\n")
            if handled >= args["die_after"]:
                die()

    elif kind == "crash-on-delivery":
        ch.basic_qos(prefetch_count=1)
        wait = Deadline(args["wait"])
        for m, p, b in ch.consume(q, inactivity_timeout=0.2):
            if m is None:
                if wait.expired():
                    log.write("none\n")
                    die(0)
                continue
            hdr = (p.headers or {}).get("x-delivery-count", -1)
            log.write(f"{seq(b)} {int(m.redelivered)} {hdr}\n")
            die()
    die(2)


# ---------------------------------------------------------------- RabbitMQ situations

def rabbit_manual_ack_kill(c: dict) -> None:
    """R1: a manual-ack consumer (prefetch 10) acks 1..30 and dies on 31; a
    second consumer then gets every unacked message back, redelivered, in
    queue order, and nothing is lost."""
    q = fresh("r1")
    conn = rconnect()
    ch = conn.channel()
    declare(ch, q)
    publish_and_wait(conn, q, 100)
    log = child_log(q)
    if run_child("manual-ack-kill", 30, queue=q, log=str(log), prefetch=10, die_on=31) != 1:
        c["timed_out"] = 1  # A never reached message 31
    acked_a = {int(x[1]) for x in log_lines(log) if x[0] == "ack"}
    c["acked_by_a"] = len(acked_a)
    wait_until(conn, q, lambda r, consumers: consumers == 0, 10)

    acked = set(acked_a)
    order, redelivered = consume_rest(c, ch, q, acked, 100, 20)
    c["lost"] = 100 - len(acked)
    c["redelivered"] = len(redelivered)
    c["first_after_restart"] = order[0] if order else -1
    c["redelivered_in_order"] = consecutive_ascending(redelivered)
    conn.close()


def rabbit_auto_ack_kill(c: dict, size: int, runs: int = 3, total: int = 5000) -> None:
    """R2: an auto-ack consumer (basic_qos 1, which auto-ack ignores) handles
    100 messages slowly and dies; everything the broker had already pushed
    into the socket / client buffer is lost.  Run 3 times."""
    results = []
    conn = rconnect()
    for _ in range(runs):
        q = fresh("r2")
        ch = conn.channel()
        declare(ch, q)
        publish_and_wait(conn, q, total, size)
        log = child_log(q)
        if run_child("auto-ack-kill", 60, queue=q, log=str(log), die_after=100) != 1:
            c["timed_out"] = 1  # the consumer never handled its 100
        processed = len([x for x in log_lines(log) if x[0] == "got"])
        still, stable = wait_stable(conn, q)
        if not stable:
            c["timed_out"] = 1
        lost = total - processed - still
        results.append((processed, still, lost))
        if len(results) == 1:
            c.update(processed=processed, still_queued=still, lost=lost)
        ch.queue_delete(q)
        ch.close()
        c["lost_min"] = min(r[2] for r in results)
        c["lost_max"] = max(r[2] for r in results)
        c["still_queued_min"] = min(r[1] for r in results)
        c["still_queued_max"] = max(r[1] for r in results)
    conn.close()


def rabbit_requeue(c: dict, qtype: str) -> None:
    """R3: prefetch 1, message "1" is nacked with requeue every time.  Shows
    where the requeued message goes (front: it blocks the queue; back: the
    others get through) and whether x-delivery-count is set.  Stops after 30
    deliveries or once 2..10 are acked; if "1" was then delivered only once,
    its second delivery is awaited (briefly) just to measure
    poison_redelivered_after."""
    q = fresh("r3")
    conn = rconnect()
    ch = conn.channel()
    declare(ch, q, qtype)
    publish_and_wait(conn, q, 10)
    ch.basic_qos(prefetch_count=1)
    seqs: list[int] = []
    others: set[int] = set()
    header = -1
    dl = Deadline(15)
    for m, p, b in ch.consume(q, inactivity_timeout=0.5):
        if dl.expired():
            c["timed_out"] = 1
            break
        if m is None:
            continue
        n = seq(b)
        seqs.append(n)
        if n == 1:
            hdr = (p.headers or {}).get("x-delivery-count")
            if hdr is not None:
                header = int(hdr)
            ch.basic_nack(m.delivery_tag, requeue=True)
        else:
            ch.basic_ack(m.delivery_tag)
            others.add(n)
        if len(seqs) >= 30 or len(others) >= 9:
            break
    requeue_counts(c, seqs, len(others))
    if seqs.count(1) == 1 and not dl.expired():
        # All others got through before "1" came back: watch for its second
        # delivery (not counted in poison_deliveries) to learn how many
        # others it waited behind.
        tail = Deadline(min(3.0, dl.left()))
        for m, p, b in ch.consume(q, inactivity_timeout=0.2):
            if m is not None:
                ch.basic_nack(m.delivery_tag, requeue=True)
                if seq(b) == 1:
                    header = int((p.headers or {}).get("x-delivery-count", header))
                    requeue_counts(c, seqs + [1], len(others))
                    c["poison_deliveries"] = seqs.count(1)
                    break
            if tail.expired():
                break
    ch.cancel()
    c["delivery_count_header"] = header
    conn.close()


def rabbit_delivery_limit(c: dict, how: str) -> None:
    """R4: quorum queue, x-delivery-limit 5, dead-lettering to a classic DLQ;
    every delivery is nacked (or rejected) with requeue.  How many deliveries
    before the message is dead-lettered?"""
    q, dlq = fresh("r4"), fresh("r4-dlq")
    conn = rconnect()
    ch = conn.channel()
    declare(ch, dlq)
    declare(ch, q, "quorum", **dlq_args(dlq, 5))
    publish_and_wait(conn, q, 1)
    ch.basic_qos(prefetch_count=1)
    deliveries, dead = 0, 0
    dl = Deadline(10)
    for m, p, b in ch.consume(q, inactivity_timeout=0.2):
        if m is not None:
            deliveries += 1
            if how == "nack":
                ch.basic_nack(m.delivery_tag, requeue=True)
            else:
                ch.basic_reject(m.delivery_tag, requeue=True)
        dead = qstat(conn, dlq)[0]
        if dead >= 1 or deliveries >= 50:
            break
        if dl.expired():
            c["timed_out"] = 1
            break
    ch.cancel()
    c["deliveries"] = deliveries
    c["dead_lettered"] = dead
    conn.close()


def rabbit_crashing_consumer(c: dict, qtype: str) -> None:
    """R5: a consumer that dies (os._exit) on every delivery before acking,
    restarted up to 10 times.  Does a crash count as a delivery attempt for
    the quorum delivery limit (2)?  The classic queue is declared with the
    same x-delivery-limit if the broker accepts it (3.10 refuses it with 406)
    and then without it; it stops after 10 deliveries."""
    import pika.exceptions as pe
    q, dlq = fresh("r5"), fresh("r5-dlq")
    conn = rconnect()
    ch = conn.channel()
    declare(ch, dlq)
    try:
        declare(ch, q, qtype, **dlq_args(dlq, 2))
    except pe.ChannelClosedByBroker as e:
        # RabbitMQ 3.10 refuses x-delivery-limit on a classic queue (406
        # PRECONDITION_FAILED "invalid arg 'x-delivery-limit' ... of queue
        # type rabbit_classic_queue"): declare it with dead-lettering only.
        if qtype == "quorum" or e.reply_code != 406:
            raise
        ch = conn.channel()
        declare(ch, q, qtype, **dlq_args(dlq, None))
    publish_and_wait(conn, q, 1)
    log = child_log(q)
    started, dead = 0, 0
    dl = Deadline(40)
    while started < 10 and not dl.expired():
        started += 1
        if run_child("crash-on-delivery", 15, queue=q, log=str(log), wait=3) not in (0, 1):
            c["timed_out"] = 1
            break
        wait_until(conn, q, lambda r, consumers: consumers == 0, 10)
        dead = qstat(conn, dlq)[0]
        lines = log_lines(log)
        if dead >= 1 or (lines and lines[-1][0] == "none"):
            break
    if dl.expired() and dead == 0 and started < 10:
        c["timed_out"] = 1
    c["deliveries"] = len([x for x in log_lines(log) if x[0] != "none"])
    c["dead_lettered"] = dead
    conn.close()


def rabbit_consumer_timeout(c: dict) -> None:
    """R6: consumer_timeout 3000 ms.  A consumer (prefetch 10) acks 1 and 2
    and stalls on 3; the broker closes the whole channel (406
    PRECONDITION_FAILED) and requeues every unacked message of it."""
    import pika.exceptions as pe
    q = fresh("r6")
    conn = rconnect()
    ch0 = conn.channel()
    declare(ch0, q)
    publish_and_wait(conn, q, 50)

    handled: dict[int, int] = {}
    acked: set[int] = set()
    closed = 0
    after = 0
    ch = conn.channel()
    ch.basic_qos(prefetch_count=10)
    gen = ch.consume(q, inactivity_timeout=0.2)
    dl = Deadline(20)
    try:
        for m, p, b in gen:
            if dl.expired():
                c["timed_out"] = 1
                break
            if m is None:
                if closed:
                    break
                continue
            n = seq(b)
            handled[n] = handled.get(n, 0) + 1
            if closed:
                after += 1
                continue
            if n != 3:
                ch.basic_ack(m.delivery_tag)
                acked.add(n)
                continue
            stall = Deadline(9.0)  # 3x the consumer timeout
            while not stall.expired() and ch.is_open:
                conn.sleep(0.1)
            try:
                ch.basic_ack(m.delivery_tag)
                acked.add(n)
            except (pe.ChannelClosed, pe.ChannelWrongStateError):
                closed = 1
            reason = getattr(ch, "_closing_reason", None)
            if getattr(reason, "reply_code", None) == 406:
                closed = 1
            # Go on iterating: anything pika still yields from this channel
            # counts as handled after the timeout.
    except (pe.ChannelClosed, pe.ChannelWrongStateError):
        closed = 1
    c["channel_closed"] = closed
    c["handled_after_timeout_same_channel"] = after

    conn2 = rconnect()
    order, redelivered = consume_rest(c, conn2.channel(), q, acked, 50, 15)
    c["redelivered"] = len(redelivered)
    c["first_after_reconnect"] = order[0] if order else -1
    c["lost"] = 50 - len(acked)
    c["stalled_message_handled"] = handled.get(3, 0) + order.count(3)
    conn2.close()
    conn.close()


def rabbit_prefetch(c: dict, prefetch: int | None) -> None:
    """R7: how many messages a manual-ack consumer holds unacked while it sits
    on its first delivery: unlimited without basic_qos, else the prefetch."""
    q = fresh("r7")
    conn = rconnect()
    ch = conn.channel()
    declare(ch, q)
    publish_and_wait(conn, q, 200)
    if prefetch:
        ch.basic_qos(prefetch_count=prefetch)
    ready = -1
    dl = Deadline(10)
    for m, p, b in ch.consume(q, inactivity_timeout=0.5):
        if dl.expired():
            c["timed_out"] = 1
            break
        if m is None:
            continue
        conn.sleep(1.0)
        ready = qstat(conn, q)[0]
        break
    ch.cancel()
    c["ready_while_first_unacked"] = ready
    c["held_unacked"] = 200 - ready if ready >= 0 else -1
    conn.close()


def rabbit_competing_auto(c: dict) -> None:
    """R8: two auto-ack consumers on two connections, both subscribed before
    100 messages are published: round robin splits them evenly."""
    q = fresh("r8")
    pub = rconnect()
    declare(pub.channel(), q)
    got = {"a": 0, "b": 0}
    conns = {}
    for k in ("a", "b"):
        conn = rconnect()
        ch = conn.channel()
        ch.basic_consume(q, lambda *_, k=k: got.__setitem__(k, got[k] + 1), auto_ack=True)
        conns[k] = conn
    if wait_until(pub, q, lambda r, consumers: consumers == 2, 10) is None:
        c["timed_out"] = 1
    publish(pub.channel(), q, 100)
    dl = Deadline(15)
    while got["a"] + got["b"] < 100:
        if dl.expired():
            c["timed_out"] = 1
            break
        for conn in conns.values():
            conn.process_data_events(time_limit=0.05)
    c.update(got)
    for conn in conns.values():
        conn.close()
    pub.close()


def rabbit_competing_manual(c: dict) -> None:
    """R9: two manual-ack consumers with prefetch 1, one handling in 2 ms and
    one in 20 ms, both subscribed before 200 messages are published: the
    fast one gets most of them (about work-rate proportional)."""
    q = fresh("r9")
    pub = rconnect()
    declare(pub.channel(), q)
    total = 200
    got = {"fast": 0, "slow": 0}
    lock = threading.Lock()
    ready = threading.Barrier(3, timeout=15)
    stop = threading.Event()
    dl = Deadline(30)

    def consumer(name: str, work: float) -> None:
        conn = rconnect()
        try:
            ch = conn.channel()
            ch.basic_qos(prefetch_count=1)

            def on_msg(ch_, m, p, b):
                time.sleep(work)
                ch_.basic_ack(m.delivery_tag)
                with lock:
                    got[name] += 1
                    if got["fast"] + got["slow"] >= total:
                        stop.set()

            ch.basic_consume(q, on_msg)
            ready.wait()
            while not stop.is_set() and not dl.expired():
                conn.process_data_events(time_limit=0.05)
        finally:
            conn.close()

    threads = [threading.Thread(target=consumer, args=a, daemon=True)
               for a in (("fast", 0.002), ("slow", 0.020))]
    for t in threads:
        t.start()
    ready.wait()
    if wait_until(pub, q, lambda r, consumers: consumers == 2, 10) is None:
        c["timed_out"] = 1
    publish(pub.channel(), q, total)
    for t in threads:
        t.join(timeout=dl.left() + 5)
    if not stop.is_set():
        c["timed_out"] = 1
        stop.set()
    with lock:
        c.update(got, total=got["fast"] + got["slow"])
    pub.close()


# ---------------------------------------------------------------- RabbitMQ restarts
#
# These situations are generators taking (counts, broker): each sets up, then
# `yield`s the broker actions it needs in turn ("stop" and "start": a clean
# restart; "crash": SIGKILL and start; see ACTIONS), and inspects the broker
# after them.  The selected situations of one group run in step (run_group),
# so one restart serves them all; each keeps its own counts, queues and
# connections.

def rclose(conn) -> None:
    """Close a connection that may already be dead (the broker went away)."""
    try:
        if conn is not None and conn.is_open:
            conn.close()
    except Exception:
        pass


def rconnect_once():
    """One connection attempt with short timeouts: what a producer that
    retries once per message does while the broker is down."""
    import pika
    return pika.BlockingConnection(pika.ConnectionParameters(
        host="127.0.0.1", port=brokers.RABBIT_PORT, heartbeat=30,
        blocked_connection_timeout=5, socket_timeout=1, stack_timeout=3,
        connection_attempts=1,
    ))


def qexists(conn, q: str) -> tuple[int, int]:
    """(queue_exists 1/0, ready message_count or 0) by a passive declare."""
    import pika.exceptions as pe
    try:
        return 1, qstat(conn, q)[0]
    except pe.ChannelClosedByBroker as e:
        if e.reply_code != 404:
            raise
        return 0, 0


def publish_confirmed(conn, q: str, seqs, delivery_mode: int = 2) -> list[int]:
    """Publish bodies `seqs` one at a time with publisher confirms (pika's
    basic_publish then returns only once the broker confirmed, and raises on
    a nack); returns the ones that were not confirmed."""
    import pika
    import pika.exceptions as pe
    ch = conn.channel()
    ch.confirm_delivery()
    props = pika.BasicProperties(delivery_mode=delivery_mode)
    failed = []
    for i in seqs:
        try:
            ch.basic_publish("", q, body(i), props)
        except (pe.NackError, pe.UnroutableError):
            failed.append(i)
    ch.close()
    return failed


def drain(conn, q: str, limit: float = 10) -> list[int]:
    """Take every message left in q (basic.get, auto-ack); their bodies."""
    ch = conn.channel()
    got: list[int] = []
    dl = Deadline(limit)
    while not dl.expired():
        m, p, b = ch.basic_get(q, auto_ack=True)
        if m is None:
            break
        got.append(seq(b))
    ch.close()
    return got


class NaiveProducer:
    """Publishes persistent messages on one connection; once that failed it
    tries one fresh connection (short timeouts) per message.  An attempt that
    raises is reported, never retried here."""

    def __init__(self, q: str, confirms: bool) -> None:
        self.q, self.confirms = q, confirms
        self.conn = self.ch = None

    def publish(self, n: int) -> bool:
        """True if basic_publish returned (with confirms: once confirmed)."""
        import pika.exceptions as pe
        try:
            if self.conn is None:
                self.conn = rconnect_once()
                self.ch = self.conn.channel()
                if self.confirms:
                    self.ch.confirm_delivery()
            self.ch.basic_publish("", self.q, body(n), persistent())
            return True
        except (pe.AMQPError, OSError):
            self.close()
            return False

    def close(self) -> None:
        rclose(self.conn)
        self.conn = self.ch = None


def rabbit_restart_queue(c: dict, rabbit, durable: bool, delivery_mode: int):
    """B1: 100 messages (delivery_mode 2 persistent, 1 transient), published
    with confirms, wait without a consumer in a classic queue (durable, or
    not durable but neither exclusive nor auto-delete) across a clean full
    node restart.  Does the queue exist afterwards, and how many are left?"""
    q = fresh("b1")
    conn = rconnect()
    conn.channel().queue_declare(q, durable=durable, exclusive=False, auto_delete=False)
    if publish_confirmed(conn, q, range(1, 101), delivery_mode):
        raise RuntimeError("a confirm was refused before the restart")
    if wait_until(conn, q, lambda ready, _: ready >= 100, 5) is None:
        raise RuntimeError(f"queue {q} never reached 100 ready messages")
    conn.close()
    yield "stop"  # a clean restart: stop ...
    yield "start"  # ... and start again
    conn = rconnect()
    c["queue_exists"], c["survived"] = qexists(conn, q)
    conn.close()


def rabbit_restart_unacked(c: dict, rabbit):
    """B2: durable classic queue, 100 persistent messages; a consumer
    (prefetch 10, manual ack) acks 1..30 and holds 31..40 unacked, still
    connected, when the node is restarted cleanly.  What is in the queue
    after the restart, and how does a new consumer get the unacked ones back
    (redelivered flags, order)?"""
    q = fresh("b2")
    pub = rconnect()
    declare(pub.channel(), q)
    if publish_confirmed(pub, q, range(1, 101)):
        raise RuntimeError("a confirm was refused before the restart")
    pub.close()
    conn = rconnect()
    # consumer_timeout is 3 s here and is read when a channel opens: give
    # this one 10 minutes so the broker cannot requeue 31..40 before the
    # restart does (the value is put back at once; the restart rereads it).
    old = rabbit.eval("Old = application:get_env(rabbit, consumer_timeout), "
                      "application:set_env(rabbit, consumer_timeout, 600000), Old.")
    try:
        ch = conn.channel()
    finally:
        if old.startswith("{ok,"):
            rabbit.eval(f"application:set_env(rabbit, consumer_timeout, {old[4:-1]}).")
    ch.basic_qos(prefetch_count=10)
    acked: set[int] = set()
    held = 0
    dl = Deadline(10)
    for m, p, b in ch.consume(q, inactivity_timeout=0.5):
        if dl.expired():
            c["timed_out"] = 1
            break
        if m is None:
            continue
        n = seq(b)
        if n <= 30:
            ch.basic_ack(m.delivery_tag)
            acked.add(n)
        else:
            held += 1
            if held >= 10:
                break
    ch.basic_qos(prefetch_count=10)  # a round trip after the acks on this channel
    if wait_until(conn, q, lambda ready, _: ready == 60, 5) is None:
        c["timed_out"] = 1
    c["acked_before"] = len(acked)
    yield "stop"  # a clean restart; the consumer is still connected, holding 31..40
    yield "start"
    rclose(conn)

    conn = rconnect()
    c["survived"] = qstat(conn, q)[0]
    # Nothing more for a second: the queue is empty.
    order, redelivered = consume_rest(c, conn.channel(), q, acked, 100, 15, idle=1.0, stop_when_idle=True)
    c["redelivered"] = len(redelivered)
    c["first_after_restart"] = order[0] if order else -1
    c["lost"] = 100 - len(acked)
    conn.close()


def rabbit_crash_confirmed(c: dict, rabbit):
    """B3: 200 persistent messages published one at a time with confirms
    into a durable classic queue, then beam.smp is SIGKILLed (no shutdown at
    all) and the node started again on the same data.  Is any confirmed
    message lost?"""
    q = fresh("b3")
    conn = rconnect()
    declare(conn.channel(), q)
    confirmed = 200 - len(publish_confirmed(conn, q, range(1, 201)))
    conn.close()
    c["confirmed"] = confirmed
    yield "crash"
    conn = rconnect()
    survived = qstat(conn, q)[0]
    c["survived"] = survived
    c["confirmed_lost"] = max(0, confirmed - survived)
    conn.close()


def rabbit_publish_while_down(c: dict, rabbit, confirms: bool):
    """B4: a producer publishes 1..50 (persistent), the node is stopped
    cleanly, the producer tries 51..100 while it is down (on its dead
    connection, then one fresh connection attempt per message), and the node
    is started again.  Without confirms a failed publish is simply dropped
    (a naive producer); with confirms every message that raised or was not
    confirmed is kept and resent once the broker is back.  What reaches the
    queue, and is anything duplicated?"""
    q = fresh("b4")
    conn = rconnect()
    declare(conn.channel(), q)
    prod = NaiveProducer(q, confirms)
    unsent = [n for n in range(1, 51) if not prod.publish(n)]
    if wait_until(conn, q, lambda ready, _: ready >= 50 - len(unsent), 5) is None:
        c["timed_out"] = 1
    conn.close()
    yield "stop"
    failed = [n for n in range(51, 101) if not prod.publish(n)]
    unsent += failed
    yield "start"
    prod.close()
    conn = rconnect()
    resent = 0
    if confirms:
        for _ in range(3):  # resend what is left, a few passes at most
            left = []
            for n in unsent:
                if prod.publish(n):
                    resent += 1
                else:
                    left.append(n)
            unsent = left
            if not unsent:
                break
        prod.close()
    in_queue = qstat(conn, q)[0]
    c["in_queue"] = in_queue
    if confirms:
        bodies = drain(conn, q)
        c["resent"] = resent
        c["lost"] = 100 - len(set(bodies))
        c["duplicates"] = len(bodies) - len(set(bodies))
    else:
        c["failed"] = len(failed)
        c["lost"] = 100 - in_queue
    conn.close()


# ---------------------------------------------------------------- NATS JetStream

async def js_connect():
    import nats
    nc = await nats.connect(f"nats://127.0.0.1:{brokers.NATS_PORT}", connect_timeout=5,
                            allow_reconnect=False)
    return nc, nc.jetstream()


async def js_stream(js, tag: str, n: int) -> tuple[str, str]:
    """A fresh stream with subjects ["<tag>.>"] holding bodies 1..n."""
    stream = fresh(tag).replace("-", "_")
    subj = stream.lower()
    await js.add_stream(name=stream, subjects=[f"{subj}.>"])
    for i in range(1, n + 1):
        await js.publish(f"{subj}.m", body(i))
    return stream, subj


async def js_fetch(psub, batch: int, timeout: float) -> list:
    import nats.errors
    try:
        return await psub.fetch(batch, timeout=timeout)
    except (nats.errors.TimeoutError, asyncio.TimeoutError):
        return []


async def js_ackwait(c: dict) -> None:
    """J1: ack_wait 1 s, max_ack_pending 10; of a batch of 10 only 1 and 2 are
    acked, then 2 more are fetched (11 and 12: what a push consumer's freed
    credit brings, as faultline models it) and the consumer stalls. After
    2.5 s all 10 it holds (3..12) come back (num_delivered 2) to the same
    consumer, which is not dropped.  Also reads JetStream's default
    max_ack_pending."""
    from nats.js.api import AckPolicy, ConsumerConfig
    nc, js = await js_connect()
    try:
        stream, subj = await js_stream(js, "j1", 20)
        psub = await js.pull_subscribe(f"{subj}.>", durable="c", stream=stream, config=ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT, ack_wait=1, max_ack_pending=10))
        first = await js_fetch(psub, 10, 3)
        for m in first:
            if seq(m.data) in (1, 2):
                await m.ack_sync()
        await js_fetch(psub, 2, 3)
        await asyncio.sleep(2.5)
        second = await js_fetch(psub, 10, 3)
        redelivered = sorted(seq(m.data) for m in second if m.metadata.num_delivered > 1)
        for m in second:
            await m.ack_sync()
        c["redelivered"] = len(redelivered)
        c["first_redelivered"] = redelivered[0] if redelivered else -1
        c["still_subscribed"] = int(len(second) > 0)
        info = await js.add_consumer(stream, ConsumerConfig(
            durable_name="defaults", ack_policy=AckPolicy.EXPLICIT))
        c["max_ack_pending_default"] = int(info.config.max_ack_pending or -1)
    finally:
        await nc.close()


async def js_max_deliver(c: dict, nak: bool) -> None:
    """J2: max_deliver 5, ack_wait 1 s; every delivery is nacked (or left to
    expire).  JetStream stops delivering after 5; the message stays in the
    stream (no dead-letter queue, only an advisory)."""
    from nats.js.api import AckPolicy, ConsumerConfig
    nc, js = await js_connect()
    try:
        stream, subj = await js_stream(js, "j2", 1)
        psub = await js.pull_subscribe(f"{subj}.>", durable="c", stream=stream, config=ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT, ack_wait=1, max_deliver=5))
        deliveries = 0
        last = time.monotonic()
        for _ in range(20):
            msgs = await js_fetch(psub, 1, 1.0 if nak else 1.5)
            for m in msgs:
                deliveries += 1
                last = time.monotonic()
                if nak:
                    await m.nak()
            c["deliveries"] = deliveries
            if not msgs and time.monotonic() - last >= 3:
                break
        else:
            c["timed_out"] = 1
    finally:
        await nc.close()


async def js_requeue_position(c: dict) -> None:
    """J3: max_ack_pending 1 (like prefetch 1); "1" is nacked every time, the
    others acked.  Where does a nacked message go?"""
    from nats.js.api import AckPolicy, ConsumerConfig
    nc, js = await js_connect()
    try:
        stream, subj = await js_stream(js, "j3", 10)
        psub = await js.pull_subscribe(f"{subj}.>", durable="c", stream=stream, config=ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT, max_ack_pending=1))
        seqs: list[int] = []
        others: set[int] = set()
        dl = Deadline(15)
        while len(seqs) < 30 and len(others) < 9:
            if dl.expired():
                c["timed_out"] = 1
                break
            for m in await js_fetch(psub, 1, 1.0):
                n = seq(m.data)
                seqs.append(n)
                if n == 1:
                    await m.nak()
                else:
                    await m.ack_sync()
                    others.add(n)
        requeue_counts(c, seqs, len(others))
        if seqs.count(1) == 1:
            # As in R3: watch for the second delivery of "1" only to measure
            # poison_redelivered_after.
            for m in await js_fetch(psub, 1, 2.0):
                await m.nak()
                if seq(m.data) == 1:
                    requeue_counts(c, seqs + [1], len(others))
                    c["poison_deliveries"] = seqs.count(1)
    finally:
        await nc.close()


# ---------------------------------------------------------------- Redis Streams

def redis_client():
    import redis
    return redis.Redis(host="127.0.0.1", port=brokers.REDIS_PORT, socket_timeout=5)


def redis_pending_after_crash(c: dict) -> None:
    """X1: c1 reads 10 of 20 entries without acking and vanishes; they stay
    pending; XAUTOCLAIM by c2 takes them (delivery count 2); nothing lost."""
    r = redis_client()
    s = fresh("x1")
    for i in range(1, 21):
        r.xadd(s, {"b": body(i)})
    r.xgroup_create(s, "g", id="0")
    read1 = r.xreadgroup("g", "c1", {s: ">"}, count=10)[0][1]
    c1_ids = {mid for mid, _ in read1}
    c["pending"] = int(r.xpending(s, "g")["pending"])
    time.sleep(0.2)
    _next, claimed, *_deleted = r.xautoclaim(s, "g", "c2", min_idle_time=100, start_id="0-0", count=100)
    c["claimed"] = len(claimed)
    ext = r.xpending_range(s, "g", min="-", max="+", count=100)
    c["delivery_count_after_claim"] = max((e["times_delivered"] for e in ext), default=-1)
    acked = set()
    for mid, _ in claimed:
        r.xack(s, "g", mid)
        acked.add(seq(_[b"b"]))
    for _ in range(5):
        got = r.xreadgroup("g", "c2", {s: ">"}, count=100)
        if not got or not got[0][1]:
            break
        for mid, f in got[0][1]:
            r.xack(s, "g", mid)
            acked.add(seq(f[b"b"]))
    c["lost"] = 20 - len(acked)
    assert len(c1_ids) == 10
    r.close()


def redis_trim_with_pending(c: dict) -> None:
    """X2: c1 reads 10 of 20 without acking; XTRIM MAXLEN = 5 deletes them
    while pending; XAUTOCLAIM reports them deleted and drops them from the
    PEL: those 10 are lost to every consumer."""
    r = redis_client()
    s = fresh("x2")
    for i in range(1, 21):
        r.xadd(s, {"b": body(i)})
    r.xgroup_create(s, "g", id="0")
    read1 = r.xreadgroup("g", "c1", {s: ">"}, count=10)[0][1]
    c1_ids = {mid for mid, _ in read1}
    c["pending"] = int(r.xpending(s, "g")["pending"])
    r.xtrim(s, maxlen=5, approximate=False)
    time.sleep(0.05)
    resp = r.xautoclaim(s, "g", "c2", min_idle_time=10, start_id="0-0", count=100)
    claimed = [(mid, f) for mid, f in resp[1] if f]
    deleted = resp[2] if len(resp) > 2 else []
    c["claimed"] = len(claimed)
    c["deleted_reported"] = len(deleted)
    c["pending_after"] = int(r.xpending(s, "g")["pending"])
    got_back = set()
    for mid, _ in claimed:
        r.xack(s, "g", mid)
        got_back.add(mid)
    # whatever is still pending could still be claimed; the rest is gone
    still_pending = {e["message_id"] for e in r.xpending_range(s, "g", min="-", max="+", count=100)}
    c["lost"] = len(c1_ids - got_back - still_pending)
    r.close()


# ---------------------------------------------------------------- the list

def _async(fn, *a, limit: float = 25):
    """Run a JetStream coroutine; asyncio's own timeout cancels it cleanly
    (closing its connection) before the SIGALRM watchdog would fire."""
    def run(c: dict) -> None:
        try:
            asyncio.run(asyncio.wait_for(fn(c, *a), limit))
        except asyncio.TimeoutError:
            c["timed_out"] = 1
    return run


# name -> (broker, function(counts), watchdog seconds)
SITUATIONS = {
    "rabbit-manual-ack-kill": ("rabbitmq", rabbit_manual_ack_kill, 45),
    "rabbit-auto-ack-kill": ("rabbitmq", lambda c: rabbit_auto_ack_kill(c, 4096), 120),
    "rabbit-auto-ack-kill-small": ("rabbitmq", lambda c: rabbit_auto_ack_kill(c, 100), 120),
    "rabbit-requeue-classic": ("rabbitmq", lambda c: rabbit_requeue(c, "classic"), 30),
    "rabbit-requeue-quorum": ("rabbitmq", lambda c: rabbit_requeue(c, "quorum"), 30),
    "rabbit-delivery-limit-quorum": ("rabbitmq", lambda c: rabbit_delivery_limit(c, "nack"), 30),
    "rabbit-delivery-limit-quorum-reject": ("rabbitmq", lambda c: rabbit_delivery_limit(c, "reject"), 30),
    "rabbit-crashing-consumer-quorum": ("rabbitmq", lambda c: rabbit_crashing_consumer(c, "quorum"), 60),
    "rabbit-crashing-consumer-classic": ("rabbitmq", lambda c: rabbit_crashing_consumer(c, "classic"), 60),
    "rabbit-consumer-timeout": ("rabbitmq", rabbit_consumer_timeout, 45),
    "rabbit-default-prefetch": ("rabbitmq", lambda c: rabbit_prefetch(c, None), 30),
    "rabbit-prefetch-10": ("rabbitmq", lambda c: rabbit_prefetch(c, 10), 30),
    "rabbit-competing-auto": ("rabbitmq", rabbit_competing_auto, 30),
    "rabbit-competing-manual": ("rabbitmq", rabbit_competing_manual, 45),
    # The restart situations (generators, run in step by run_group): the
    # watchdog bounds each one's own phases; the broker actions are bounded
    # in brokers.py.
    "rabbit-restart-durable-persistent": ("rabbitmq", lambda c, b: rabbit_restart_queue(c, b, True, 2), 20),
    "rabbit-restart-durable-transient": ("rabbitmq", lambda c, b: rabbit_restart_queue(c, b, True, 1), 20),
    "rabbit-restart-transient-queue": ("rabbitmq", lambda c, b: rabbit_restart_queue(c, b, False, 2), 20),
    "rabbit-restart-unacked": ("rabbitmq", rabbit_restart_unacked, 40),
    "rabbit-publish-while-down": ("rabbitmq", lambda c, b: rabbit_publish_while_down(c, b, False), 30),
    "rabbit-publish-while-down-confirms": ("rabbitmq", lambda c, b: rabbit_publish_while_down(c, b, True), 30),
    "rabbit-crash-confirmed": ("rabbitmq", rabbit_crash_confirmed, 30),
    "js-ackwait": ("nats", _async(js_ackwait), 30),
    "js-max-deliver": ("nats", _async(js_max_deliver, True, limit=35), 40),
    "js-max-deliver-ackwait": ("nats", _async(js_max_deliver, False, limit=35), 40),
    "js-requeue-position": ("nats", _async(js_requeue_position), 30),
    "redis-pending-after-crash": ("redis", redis_pending_after_crash, 20),
    "redis-trim-with-pending": ("redis", redis_trim_with_pending, 20),
}


# Restart situation -> its group; the selected situations of a group share
# each broker action of ACTIONS[group], in that order.
SHARED = {
    "rabbit-restart-durable-persistent": "clean",
    "rabbit-restart-durable-transient": "clean",
    "rabbit-restart-transient-queue": "clean",
    "rabbit-restart-unacked": "clean",
    "rabbit-publish-while-down": "clean",
    "rabbit-publish-while-down-confirms": "clean",
    "rabbit-crash-confirmed": "crash",
}
ACTIONS = {"clean": ["stop", "start"], "crash": ["crash"]}


def broker_action(rabbit, action: str) -> None:
    """stop: clean full node stop; start: start on the same data; crash:
    SIGKILL beam.smp, then start on the same data."""
    {"stop": rabbit.stop_node,
     "start": rabbit.start_node,
     "crash": lambda: rabbit.restart(crash=True)}[action]()


def _on_alarm(signum, frame):
    raise Watchdog()


def _on_term(signum, frame):
    raise KeyboardInterrupt()


def run_situation(name: str) -> dict:
    _broker, fn, limit = SITUATIONS[name]
    c: dict = {}
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(limit)
    try:
        fn(c)
    except Watchdog:
        c["timed_out"] = 1
    except Exception:
        traceback.print_exc()
        c["error"] = 1
    finally:
        signal.alarm(0)
    return {k: int(v) for k, v in c.items()}


def _phase(gen, c: dict, left: float):
    """Run a restart situation up to its next yield under the watchdog;
    returns the action it asks for, None once it is done, False if it
    failed or overran (its counts say which)."""
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(max(1, int(left + 0.999)))
    try:
        return next(gen)
    except StopIteration:
        return None
    except Watchdog:
        c["timed_out"] = 1
    except Exception:
        traceback.print_exc()
        c["error"] = 1
    finally:
        signal.alarm(0)
    return False


def run_group(names: list[str], rabbit, report) -> None:
    """Run the restart situations `names` (one group of SHARED) in step:
    each runs up to its next yield, then the broker does that action once
    for all of them, and so on; report(name, counts, seconds) is called for
    each as it finishes.  Whatever happens, the broker is running again
    afterwards (if it cannot be started, that is raised)."""
    actions = ACTIONS[SHARED[names[0]]]
    counts = {n: {} for n in names}
    budget = {n: float(SITUATIONS[n][2]) for n in names}
    live = {n: SITUATIONS[n][1](counts[n], rabbit) for n in names}
    try:
        for action in actions + [None]:
            for n in list(live):
                t = time.monotonic()
                got = _phase(live[n], counts[n], budget[n])
                budget[n] -= time.monotonic() - t
                if got != action:
                    if got is not False:
                        print(f"{n}: asked for {got!r} where the group does {action!r}",
                              file=sys.stderr)
                        counts[n]["error"] = 1
                    live.pop(n).close()
                elif action is None:
                    live.pop(n)
                if n not in live:
                    used = SITUATIONS[n][2] - budget[n]
                    report(n, {k: int(v) for k, v in counts[n].items()}, used)
            if action is None or not live:
                break
            t = time.monotonic()
            try:
                broker_action(rabbit, action)
            except Exception:
                traceback.print_exc()
                for n in list(live):
                    counts[n]["error"] = 1
                    live.pop(n).close()
                    report(n, {k: int(v) for k, v in counts[n].items()},
                           SITUATIONS[n][2] - budget[n])
            print(f"{'  (rabbitmq ' + action + ')':40s} {time.monotonic() - t:5.1f}s", flush=True)
    finally:
        for gen in live.values():
            gen.close()
    if rabbit.server is None:  # every situation failed while it was down
        t = time.monotonic()
        rabbit.start_node()
        print(f"{'  (rabbitmq start)':40s} {time.monotonic() - t:5.1f}s", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated situation names")
    ap.add_argument("--out", default=str(brokers.TARGET / "real.json"))
    ap.add_argument("--list", action="store_true", help="list the situations and exit")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child_main(a.child[0], json.loads(a.child[1]))
        return 0
    if a.list:
        for name, (b, fn, _) in SITUATIONS.items():
            print(f"{name:40s} {b}")
        return 0
    names = list(SITUATIONS)
    if a.only:
        names = [n.strip() for n in a.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in SITUATIONS]
        if unknown:
            ap.error(f"unknown situation(s): {', '.join(unknown)}")

    # SIGTERM unwinds like Ctrl-C, so every broker is stopped by its `with`.
    signal.signal(signal.SIGTERM, _on_term)
    shutil.rmtree(brokers.TARGET / "children", ignore_errors=True)
    results: dict[str, dict] = {}
    t0 = time.monotonic()

    def report(n: str, counts: dict, seconds: float) -> None:
        results[n] = counts
        print(f"{n:40s} {seconds:5.1f}s  "
              + " ".join(f"{k}={v}" for k, v in sorted(counts.items())), flush=True)
    try:
        for broker, cls in brokers.BROKERS.items():
            mine = [n for n in names if SITUATIONS[n][0] == broker]
            if not mine:
                continue
            try:
                with cls() as running:
                    for n in mine:
                        if n in results:
                            continue  # ran with its restart group
                        if n in SHARED:
                            run_group([m for m in mine if SHARED.get(m) == SHARED[n]],
                                      running, report)
                            continue
                        t = time.monotonic()
                        report(n, run_situation(n), time.monotonic() - t)
            except Exception as e:
                print(f"{broker}: {e}", file=sys.stderr)
                for n in mine:
                    results.setdefault(n, {"error": 1})
    except KeyboardInterrupt:
        print("interrupted: brokers stopped, no JSON written", file=sys.stderr)
        return 130

    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, sort_keys=True, indent=2) + "\n")
    bad = [n for n, c in results.items() if c.get("error") or c.get("timed_out")]
    print(f"{len(results)} situations in {time.monotonic() - t0:.0f}s -> {out}"
          + (f"; incomplete: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
