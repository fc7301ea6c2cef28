#!/usr/bin/env python3
"""explore_compare.py -- compares two explore.json files of the same `ncelab theory explore` run.

Usage: explore_compare.py OLD/explore.json NEW/explore.json [--tol 1e-9] [--exact]

For a change that should not alter what is computed (a faster kernel, another schedule, MPI ranks):
the instances must be the same commands; every instance certified in OLD must be certified in NEW;
on instances certified in both, every curve value must agree within --tol (relative to max(1, |v|)).
--exact asks for identical records apart from the timing fields ("seconds", summary "seconds" and
"rate"), as a run split over MPI ranks must give. Prints the certified counts, the worst curve
difference (instance, metric, k) and the instances whose verdicts changed; exits 1 on a failure.
"""
import json
import sys

TIMING = ("seconds", "rate", "instances_per_second", "resumed")


def strip_timing(o):
    """o without its timing fields, recursively"""
    if isinstance(o, dict):
        return {k: strip_timing(v) for k, v in o.items() if k not in TIMING}
    if isinstance(o, list):
        return [strip_timing(v) for v in o]
    return o


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    tol = 1e-9
    if "--tol" in argv:
        tol = float(argv[argv.index("--tol") + 1])
        args.remove(argv[argv.index("--tol") + 1])
    exact = "--exact" in argv
    if len(args) != 2:
        print(__doc__)
        return 2
    old, new = (json.load(open(p)) for p in args)
    a, b = old["instances"], new["instances"]
    fails = []
    if len(a) != len(b):
        fails.append("instance counts differ: %d vs %d" % (len(a), len(b)))
    ca = sum(r["certified"] for r in a)
    cb = sum(r["certified"] for r in b)
    print("instances %d / %d; certified %d (old) / %d (new)" % (len(a), len(b), ca, cb))
    lost, gained, verdicts = [], [], 0
    worst = (0.0, None)
    for ra, rb in zip(a, b):
        if ra["command"] != rb["command"]:
            fails.append("instance %d: another command" % ra["index"])
            continue
        if ra["certified"] and not rb["certified"]:
            lost.append(ra["index"])
        if rb["certified"] and not ra["certified"]:
            gained.append(ra["index"])
        if not (ra["certified"] and rb["certified"]):
            continue
        for m, va in ra["curves"].items():
            for i, (x, y) in enumerate(zip(va, rb["curves"][m])):
                d = abs(x - y) / max(1.0, abs(x))
                if d > worst[0]:
                    worst = (d, (ra["index"], m, ra["k"][i]))
        if ra["monotone"] != rb["monotone"] or ra["change_significant"] != rb["change_significant"]:
            verdicts += 1
    print("worst curve difference on instances certified in both: %.3g%s" %
          (worst[0], " (instance %d, %s, k = %d)" % worst[1] if worst[1] else ""))
    print("certified before, not now: %s" % (lost or "none"))
    print("certified now, not before: %s" % (gained or "none"))
    print("instances certified in both whose rise/change verdicts differ: %d" % verdicts)
    same = strip_timing(old["summary"]) == strip_timing(new["summary"])
    print("summary (counts, rises, worst instances) identical apart from timing: %s" % ("yes" if same else "no"))
    if lost:
        fails.append("%d instances lost their certificate" % len(lost))
    if worst[0] > tol:
        fails.append("curves differ by %.3g > %.3g" % (worst[0], tol))
    if exact:
        sa, sb = strip_timing(old), strip_timing(new)
        if sa != sb:
            keys = [k for k in sa if sa.get(k) != sb.get(k)]
            fails.append("not identical apart from timing: %s differ" % ", ".join(keys))
        else:
            print("identical apart from timing fields")
    for f in fails:
        print("FAIL:", f)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
