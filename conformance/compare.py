"""Compare the real brokers' counts with faultline's, situation by situation.

    python conformance/compare.py --real target/conformance/real.json \
        [--faultline target/release/faultline] [--table docs/conformance.md] [--check]

For every situation, `real.py` drove the real broker and wrote its counts;
here the scenario `conformance/scenarios/<situation>.ron` drives faultline,
and the same counts are read off its trace (JSON lines) and its `--json`
outcome. Counts only, never timings. Each row says how the two are compared
(equal, or both inside a band where the real count varies run to run) and
whether they agree. A row that disagrees fails `--check`, unless it names a
deliberate simplification and the setting that reproduces the real
behaviour.

The table is Markdown, written between two markers in `--table`;
`--check` also fails when the committed table differs from the one this run
produced (but for the counts that vary run to run, marked ~), so
docs/conformance.md never shows numbers the suite did not measure.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CONSUMER = "consumer"


def run_faultline(binary, scenario):
    """Runs `scenario`; returns (trace records, outcome JSON)."""
    with tempfile.TemporaryDirectory() as tmp:
        trace = os.path.join(tmp, "trace.jsonl")
        proc = subprocess.run(
            [binary, "run", scenario, "--json", "--trace", trace],
            capture_output=True, text=True, timeout=120,
        )
        if proc.returncode not in (0, 1, 3):
            raise RuntimeError(f"faultline run {scenario}: exit {proc.returncode}\n{proc.stderr}")
        with open(trace) as f:
            records = [json.loads(line) for line in f if line.strip()]
    return records, json.loads(proc.stdout)


# --- Reading counts off a faultline trace --------------------------------

def at_consumers(records, kind, prefix=CONSUMER):
    """Records of `kind` at the nodes whose name starts with `prefix`."""
    return [r for r in records if r["kind"] == kind and r.get("node", "").startswith(prefix)]


def deliveries(records, prefix=CONSUMER):
    """Entities delivered to the consumers, in delivery order."""
    return [r["entity"] for r in at_consumers(records, "enqueued", prefix)]


def index_of(records, kind, after=-1):
    """Position of the first record of `kind` after position `after`."""
    for i in range(after + 1, len(records)):
        if records[i]["kind"] == kind:
            return i
    return None


def lost(outcome):
    return outcome["metrics"]["lost"]


def invariant_counts(outcome):
    return outcome["invariants"][0]["counts"]


def poison_order(order, cap=30):
    """Counts of R3/J3 from the first `cap` deliveries (message 1 is the poison)."""
    order = order[:cap]
    firsts = [i for i, e in enumerate(order) if e == 1]
    first_other = next((i for i, e in enumerate(order) if e != 1), len(order))
    between = 0
    if len(firsts) >= 2:
        between = sum(1 for e in order[firsts[0] + 1:firsts[1]] if e != 1)
    return {
        "poison_deliveries": len(firsts),
        "others_acked": len({e for e in order if e != 1}),
        "deliveries_before_first_other": first_other,
        "poison_redelivered_after": between,
    }


def manual_ack_kill(records, outcome):
    crash = index_of(records, "crash")
    restart = index_of(records, "restart", crash)
    before = records[:crash]
    redelivered = [r["entity"] for r in records if r["kind"] == "redelivered"]
    after = [r["entity"] for r in records[restart:] if r["kind"] == "enqueued" and r["node"].startswith(CONSUMER)]
    handled = len(at_consumers(before, "handled")) - len(at_consumers(before, "crash-point"))
    return {
        "lost": lost(outcome),
        "redelivered": len(redelivered),
        "first_after_restart": after[0] if after else -1,
        "redelivered_in_order": int(redelivered == list(range(redelivered[0], redelivered[0] + len(redelivered))))
        if redelivered else 0,
        "acked_by_a": handled,
    }


def auto_ack_kill(records, outcome):
    counts = invariant_counts(outcome)
    return {
        "processed": len(at_consumers(records, "handled")),
        "still_queued": counts["unresolved_at_end"],
        "lost": lost(outcome),
    }


def requeue(records, outcome):
    return poison_order(deliveries(records))


def delivery_limit(records, outcome, cap=None):
    order = deliveries(records)
    if cap is not None:
        order = order[:cap]
    return {
        "deliveries": len(order),
        "dead_lettered": sum(1 for r in records if r["kind"] == "dead-lettered"),
    }


def consumer_timeout(records, outcome):
    closed = index_of(records, "channel-closed")
    if closed is None:
        return {"channel_closed": 0}
    reconnected = index_of(records, "reconnected", closed)
    between = records[closed + 1:reconnected]
    stalled = at_consumers(records[:closed], "enqueued")[2]["entity"]
    after = [r["entity"] for r in records[reconnected:] if r["kind"] == "enqueued" and r["node"].startswith(CONSUMER)]
    handled_between = [r["entity"] for r in at_consumers(between, "handled")]
    return {
        "channel_closed": 1,
        "handled_after_timeout_same_channel": sum(1 for e in handled_between if e != stalled),
        "redelivered": sum(1 for r in records if r["kind"] == "redelivered"),
        "first_after_reconnect": after[0] if after else -1,
        "lost": lost(outcome),
        "stalled_message_handled": sum(1 for r in at_consumers(records, "handled") if r["entity"] == stalled),
    }


def prefetch(records, outcome):
    first_handled = next(i for i, r in enumerate(records) if r["kind"] == "handled" and r["node"].startswith(CONSUMER))
    held = len(at_consumers(records[:first_handled], "enqueued"))
    total = invariant_counts(outcome)["accepted"]
    return {"ready_while_first_unacked": total - held, "held_unacked": held}


def competing_auto(records, outcome):
    return {
        "a": len(at_consumers(records, "enqueued", "consumer-1")),
        "b": len(at_consumers(records, "enqueued", "consumer-2")),
    }


def competing_manual(records, outcome):
    fast = len(at_consumers(records, "handled", "fast"))
    slow = len(at_consumers(records, "handled", "slow"))
    return {"fast": fast, "slow": slow, "total": fast + slow}


def ackwait(records, outcome):
    first = index_of(records, "redelivered")
    if first is None:
        return {"redelivered": 0}
    # The first wave: the redeliveries before the consumer handles anything again.
    resumed = index_of(records, "resumed", first)
    wave = [r["entity"] for r in records[first:resumed] if r["kind"] == "redelivered"]
    later = at_consumers(records[first:], "enqueued")
    return {
        "redelivered": len(wave),
        "first_redelivered": min(wave),
        "still_subscribed": int(bool(later)),
    }


def broker_record(records, kind):
    """Position of the queue broker's crash or restart record."""
    return next(i for i, r in enumerate(records) if r["kind"] == kind and r.get("node") == "broker-1")


def restart(records, outcome):
    crash, back = broker_record(records, "crash"), broker_record(records, "restart")
    after = deliveries(records[back:])
    redelivered = [r["entity"] for r in records[back:] if r["kind"] == "redelivered"]
    confirmed = sum(1 for r in records[:crash] if r["kind"] == "published" and r["node"].startswith("producer"))
    return {
        "survived": len(set(after)),
        "redelivered": len(redelivered),
        "first_after_restart": after[0] if after else -1,
        "lost": lost(outcome),
        "acked_before": len(at_consumers(records[:crash], "handled")),
        "confirmed": confirmed,
        "confirmed_lost": max(0, confirmed - len(set(after))),
    }


def publish_while_down(records, outcome):
    crash = broker_record(records, "crash")
    delivered = deliveries(records)
    resent = sum(1 for r in records[crash:] if r["kind"] == "published" and r["node"].startswith("producer"))
    return {
        "in_queue": len(delivered),
        "failed": outcome["metrics"]["lost_by_reason"]["broker-down"],
        "lost": lost(outcome),
        "resent": resent if outcome["metrics"]["lost_by_reason"]["broker-down"] == 0 else 0,
        "duplicates": len(delivered) - len(set(delivered)),
    }


def redis_pending(records, outcome):
    """X1/X2: what consumer c1 had read when it died, and what the claimer got."""
    read = set(deliveries(records, "consumer"))
    claimed = [r for r in records if r["kind"] == "redelivered" and r["entity"] in read]
    trimmed = [r for r in records if r["kind"] == "lost" and r.get("reason") == "trimmed" and r["entity"] in read]
    return {
        "pending": len(read),
        "claimed": len(claimed),
        "delivery_count_after_claim": max((r["deliveries"] for r in claimed), default=-1),
        "deleted_reported": len(trimmed),
        "lost": len(trimmed) + sum(1 for r in records if r["kind"] == "lost" and r["entity"] in read
                                   and r.get("reason") != "trimmed"),
        "pending_after": 0,
    }


# --- The table ------------------------------------------------------------

def eq(name):
    return (name, "equal", lambda real, fl: real == fl)


def ratio_above(name, other, factor):
    """Both runs give `name` more than `factor` times `other`."""
    return (f"{name}/{other}", f"{name} > {factor} x {other} in both",
            lambda real, fl: real[0] > factor * real[1] and fl[0] > factor * fl[1])


def within(name, lo, hi):
    return (name, f"both in [{lo}, {hi}]", lambda real, fl: lo <= real <= hi and lo <= fl <= hi)


# situation -> (what it shows, extractor, comparisons)
SITUATIONS = {
    "rabbit-manual-ack-kill": (
        "RabbitMQ classic, manual ack, consumer killed mid-handling",
        manual_ack_kill,
        [eq("lost"), eq("redelivered"), eq("first_after_restart"), eq("redelivered_in_order"), eq("acked_by_a")],
    ),
    "rabbit-auto-ack-kill": (
        "RabbitMQ classic, auto-ack consumer killed with 5,000 x 4 KB waiting",
        auto_ack_kill,
        [eq("processed"), within("lost", 900, 1300), within("still_queued", 3600, 4000)],
    ),
    "rabbit-auto-ack-kill-small": (
        "the same with 100-byte messages: flow control bounds bytes",
        auto_ack_kill,
        [eq("processed"), eq("lost"), eq("still_queued")],
    ),
    "rabbit-requeue-classic": (
        "RabbitMQ classic, a message nacked for ever (prefetch 1)",
        requeue,
        [eq("poison_deliveries"), eq("others_acked"), eq("deliveries_before_first_other")],
    ),
    "rabbit-requeue-quorum": (
        "RabbitMQ quorum, a message nacked for ever (prefetch 1)",
        requeue,
        [eq("others_acked"), eq("deliveries_before_first_other"), eq("poison_redelivered_after")],
    ),
    "rabbit-delivery-limit-quorum": (
        "RabbitMQ quorum, x-delivery-limit 5, nacked every time",
        delivery_limit,
        [eq("deliveries"), eq("dead_lettered")],
    ),
    "rabbit-crashing-consumer-quorum": (
        "RabbitMQ quorum, x-delivery-limit 2, the message kills its consumer",
        delivery_limit,
        [eq("deliveries"), eq("dead_lettered")],
    ),
    "rabbit-crashing-consumer-classic": (
        "RabbitMQ classic, the message kills its consumer (first 10 deliveries)",
        lambda r, o: delivery_limit(r, o, cap=10),
        [eq("deliveries"), eq("dead_lettered")],
    ),
    "rabbit-consumer-timeout": (
        "RabbitMQ classic, consumer_timeout, consumer stalled on message 3 (prefetch 10)",
        consumer_timeout,
        [eq("channel_closed"), eq("handled_after_timeout_same_channel"), eq("redelivered"),
         eq("first_after_reconnect"), eq("lost"), eq("stalled_message_handled")],
    ),
    "rabbit-default-prefetch": (
        "RabbitMQ classic, manual ack, no prefetch set, 200 waiting",
        prefetch,
        [eq("held_unacked"), eq("ready_while_first_unacked")],
    ),
    "rabbit-prefetch-10": (
        "RabbitMQ classic, manual ack, prefetch 10, 200 waiting",
        prefetch,
        [eq("held_unacked"), eq("ready_while_first_unacked")],
    ),
    "rabbit-competing-auto": (
        "RabbitMQ classic, two auto-ack consumers, 100 published",
        competing_auto,
        [eq("a"), eq("b")],
    ),
    "rabbit-competing-manual": (
        "RabbitMQ classic, a 2 ms and a 20 ms consumer, prefetch 1, 200 published",
        competing_manual,
        [eq("total"), ratio_above("fast", "slow", 3)],
    ),
    "rabbit-restart-durable-persistent": (
        "RabbitMQ classic, durable queue, 100 persistent messages, broker restart",
        restart,
        [eq("survived")],
    ),
    "rabbit-restart-durable-transient": (
        "RabbitMQ classic, durable queue, 100 transient messages, broker restart",
        restart,
        [eq("survived")],
    ),
    "rabbit-restart-transient-queue": (
        "RabbitMQ classic, transient queue, 100 persistent messages, broker restart",
        restart,
        [eq("survived")],
    ),
    "rabbit-restart-unacked": (
        "RabbitMQ classic, broker restart while a consumer holds 10 unacknowledged",
        restart,
        [eq("survived"), eq("redelivered"), eq("first_after_restart"), eq("lost"), eq("acked_before")],
    ),
    "rabbit-crash-confirmed": (
        "RabbitMQ classic, 200 confirmed, the broker killed (SIGKILL) and restarted",
        restart,
        [eq("confirmed"), eq("survived"), eq("confirmed_lost")],
    ),
    "rabbit-publish-while-down": (
        "RabbitMQ classic, no confirms: 50 published, then 50 while the broker is down",
        publish_while_down,
        [eq("in_queue"), eq("failed"), eq("lost")],
    ),
    "rabbit-publish-while-down-confirms": (
        "the same with publisher confirms: the producer resends what failed",
        publish_while_down,
        [eq("in_queue"), eq("resent"), eq("lost"), eq("duplicates")],
    ),
    "redis-pending-after-crash": (
        "Redis stream group, a consumer dies holding 10 read entries; another claims them",
        redis_pending,
        [eq("pending"), eq("claimed"), eq("delivery_count_after_claim"), eq("lost")],
    ),
    "redis-trim-with-pending": (
        "the same, with the stream trimmed to its 5 newest entries (MAXLEN 5) before the claim",
        redis_pending,
        [eq("pending"), eq("claimed"), eq("deleted_reported"), eq("lost")],
    ),
    "js-ackwait": (
        "JetStream, AckWait 1 s, consumer stalled after acking 1 and 2",
        ackwait,
        [eq("redelivered"), eq("first_redelivered"), eq("still_subscribed")],
    ),
    "js-max-deliver": (
        "JetStream, max_deliver 5, nak every time",
        delivery_limit,
        [eq("deliveries")],
    ),
    "js-max-deliver-ackwait": (
        "JetStream, max_deliver 5, never acked (AckWait ends each delivery)",
        delivery_limit,
        [eq("deliveries")],
    ),
    "js-requeue-position": (
        "JetStream, a message nak'd for ever (max_ack_pending 1)",
        requeue,
        [eq("poison_deliveries"), eq("others_acked"), eq("deliveries_before_first_other")],
    ),
}

# situation -> the deliberate simplification that explains a disagreement,
# with the setting that reproduces the real behaviour (none at present).
SIMPLIFICATIONS: dict[str, str] = {}


def value(counts, name):
    if "/" in name:
        a, b = name.split("/")
        return (counts.get(a), counts.get(b))
    return counts.get(name)


def show(v, varies=False):
    if isinstance(v, tuple):
        return " / ".join(show(x, varies) for x in v)
    text = "missing" if v is None else f"{v:,}" if isinstance(v, int) else str(v)
    return "~" + text if varies and v is not None else text


BEGIN = "<!-- conformance table: written by conformance/compare.py -->"
END = "<!-- end of conformance table -->"


def comparable(table):
    """The table without the counts that vary from run to run on the real
    broker (those compared by a band, marked `~`)."""
    return re.sub(r"~[0-9,]+", "~", table)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", default=os.path.join(ROOT, "target/conformance/real.json"))
    ap.add_argument("--faultline", default=os.path.join(ROOT, "target/release/faultline"))
    ap.add_argument("--table", default=None, help="write the Markdown table here")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 on a disagreement, or when --table differs from the committed file")
    args = ap.parse_args()
    with open(args.real) as f:
        real_all = json.load(f)

    rows, failures = [], []
    for name, (what, extract, comparisons) in SITUATIONS.items():
        simplification = SIMPLIFICATIONS.get(name)
        real = real_all.get(name)
        if real is None:
            failures.append(f"{name}: no real-broker counts")
            continue
        records, outcome = run_faultline(args.faultline, os.path.join(HERE, "scenarios", f"{name}.ron"))
        ours = extract(records, outcome)
        real_cells, our_cells, disagreements = [], [], []
        for count, rule, agrees in comparisons:
            r, o = value(real, count), value(ours, count)
            ok = None not in (r if isinstance(r, tuple) else (r,)) and agrees(r, o)
            # A count compared by a band or a ratio varies from run to run on
            # the real broker: marked with ~.
            varies = not rule.startswith("equal")
            real_cells.append(f"{count} {show(r, varies)}")
            our_cells.append(f"{count} {show(o, varies)}")
            if not ok:
                disagreements.append(f"{count} ({rule})")
        if real.get("timed_out"):
            disagreements.append("the real-broker run timed out")
        if not disagreements:
            verdict = "yes"
        elif simplification:
            verdict = "deliberate: " + simplification
        else:
            verdict = "NO: " + "; ".join(disagreements)
            failures.append(f"{name}: real {real_cells}, faultline {our_cells}: {disagreements}")
        rows.append((name, what, ", ".join(real_cells), ", ".join(our_cells), verdict))

    lines = [
        "| situation | real broker | faultline | agree |",
        "|---|---|---|---|",
    ]
    for name, what, r, o, verdict in rows:
        lines.append(f"| `{name}`: {what} | {r} | {o} | {verdict} |")
    table = "\n".join(lines) + "\n"
    print(table)

    if args.table:
        text = open(args.table).read() if os.path.exists(args.table) else ""
        if BEGIN not in text or END not in text:
            failures.append(f"{args.table} has no {BEGIN} ... {END} block for the table")
        else:
            head, rest = text.split(BEGIN, 1)
            old, tail = rest.split(END, 1)
            if args.check:
                if comparable(old.strip()) != comparable(table.strip()):
                    failures.append(f"the table in {args.table} differs from this run's: "
                                    f"regenerate it with `bash conformance/run --write`")
            else:
                with open(args.table, "w") as f:
                    f.write(head + BEGIN + "\n" + table + END + tail)
    for f in failures:
        print(f"DISAGREE {f}", file=sys.stderr)
    if args.check and failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
