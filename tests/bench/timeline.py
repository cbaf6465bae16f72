#!/usr/bin/env python3
"""timeline.py PREFIX: where the wall time of a deployment benchmark goes.

Reads what ROLLING_TIMELINE=PREFIX (rolling.sh) or FANOUT_TIMELINE=PREFIX
(fanout.sh) kept from droverd's store:
  PREFIX-instructions.txt  step_id|issued_at_ms|sent_ms|acked_ms|agent
  PREFIX-events.txt        kind|agent|at_ms|step_id|result   (id order)
and prints, per deployment, in ms from its deployment_created event:
  - the milestones (started, state changes, tier_done, the end);
  - each wave of instructions (same step kind and service, same issued_at)
    with when its first/last was issued, sent, acknowledged and reported
    done (the SUCCEEDED report stored);
  - for the rolling batches (START waves; a batch queued in several chunks
    counts once), the critical path summed over
    every batch: issued -> last sent -> last accepted (the agents' ACCEPTED
    report stored) -> last done -> the service's next batch issued. The
    last gap is the deployment engine's part (the report's commit, the
    engine's turn and save, queueing the next batch).
Times are droverd's wall clock as stored (an event when its row was
written, a report when it was stored, before its commit).
"""
import collections
import sys


def rows(path, n):
    out = []
    with open(path) as f:
        for line in f:
            p = line.rstrip("\n").split("|")
            out.append(p + [""] * (n - len(p)))
    return out


def ms(x):
    return int(x) if x not in ("", "0") else None


def span(xs):
    xs = [x for x in xs if x is not None]
    return (min(xs), max(xs)) if xs else (None, None)


def fmt(x):
    return "-" if x is None else "%d" % x


def batches(keys, waves):
    """A service's START waves as batches: a batch queued in several chunks
    (core_queue_many) has waves issued before any of its hosts was done."""
    out = collections.defaultdict(list)  # service -> [(issued, [rows])]
    for k in keys:
        if k[1] != "start":
            continue
        b = out[k[2]]
        first_done = span([x[3] for x in b[-1][1]])[0] if b else None
        if b and (first_done is None or k[3] < first_done):
            b[-1][1].extend(waves[k])
        else:
            b.append((k[3], list(waves[k])))
    return out


def critical_path(keys, waves):
    crit = collections.Counter()
    nb = 0
    for svc_batches in batches(keys, waves).values():
        for i, (iss, w) in enumerate(svc_batches):
            s, _a, acc, d = (span([x[j] for x in w]) for j in range(4))
            if None in (s[1], acc[1], d[1]):
                continue
            crit["issued -> last sent"] += s[1] - iss
            crit["last sent -> last accepted"] += acc[1] - s[1]
            crit["last accepted -> last done"] += d[1] - acc[1]
            if i + 1 < len(svc_batches):
                crit["last done -> next batch issued (engine)"] += svc_batches[i + 1][0] - d[1]
                nb += 1
    return crit, nb


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: timeline.py PREFIX")
    pre = sys.argv[1]
    ins = rows(pre + "-instructions.txt", 5)
    ev = rows(pre + "-events.txt", 5)
    done = {}  # step_id -> when its SUCCEEDED/FAILED report was stored
    accepted = {}
    for kind, _agent, at, step, result in ev:
        if kind == "report" and step:
            if result == "accepted":
                accepted.setdefault(step, int(at))
            elif result in ("succeeded", "failed"):
                done.setdefault(step, int(at))
    deps = collections.OrderedDict()
    for kind, _agent, at, step, _r in ev:
        if kind == "deployment_created":
            deps[int(at)] = []
    starts = sorted(deps)
    for kind, _agent, at, _s, _r in ev:
        if kind in ("started", "state", "tier_done", "succeeded", "failed", "rolled_back"):
            t = int(at)
            owner = max([s for s in starts if s <= t], default=None)
            if owner is not None:
                deps[owner].append((kind, t))
    waves = collections.defaultdict(list)
    for step, iss, sent, ack, _agent in ins:
        p = step.split(":")
        if len(p) < 4:
            continue
        waves[(p[0], p[1], p[2], int(iss))].append(
            (ms(sent), ms(ack), accepted.get(step), done.get(step)))
    by_dep = collections.defaultdict(list)
    for k in waves:
        by_dep[k[0]].append(k)
    for dep_id, t0 in zip(sorted(by_dep, key=lambda d: min(k[3] for k in by_dep[d])), starts):
        print("deployment %s (ms from deployment_created)" % dep_id)
        for kind, t in deps[t0]:
            print("  %-12s %7d" % (kind, t - t0))
        keys = sorted(by_dep[dep_id], key=lambda k: k[3])
        print("  %-9s %3s %5s %7s %15s %15s %15s %15s" %
              ("wave", "svc", "n", "issued", "sent", "accepted", "acked", "done"))
        for k in keys:
            w = waves[k]
            s, a, acc, d = (span([x[i] for x in w]) for i in range(4))
            rel = lambda p: "%6s..%-6s" % tuple(fmt(None if v is None else v - t0) for v in p)
            print("  %-9s %3s %5d %7d %15s %15s %15s %15s" %
                  (k[1], k[2], len(w), k[3] - t0, rel(s), rel(acc), rel(a), rel(d)))
        crit, nb = critical_path(keys, waves)
        if crit:
            total = sum(crit.values())
            print("  rolling batches, summed over every batch (%d followed by another):" % nb)
            for name in ("issued -> last sent", "last sent -> last accepted",
                         "last accepted -> last done", "last done -> next batch issued (engine)"):
                print("    %-42s %7d ms  %4.1f %%" % (name, crit[name], 100.0 * crit[name] / total))


if __name__ == "__main__":
    main()
