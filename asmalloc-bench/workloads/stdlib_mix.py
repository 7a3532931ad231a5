"""Workload (d): python3 doing standard-library work.

    python3 stdlib_mix.py ROUNDS

Each round builds a batch of records, serialises and parses them with json,
scans log-like text with re, counts and groups with collections, and hashes
with hashlib. Prints a digest that depends only on ROUNDS (the same under
every allocator and tool).
"""

import collections
import hashlib
import json
import re
import sys

LOG_LINE = re.compile(r"(?P<ip>\d+\.\d+\.\d+\.\d+) - (?P<user>\w+) \[(?P<ts>[^\]]+)\] "
                      r'"(?P<method>GET|POST|PUT) (?P<path>/[\w/.-]*)" (?P<status>\d{3}) (?P<size>\d+)')
WORD = re.compile(r"[a-z]+")


def records(round_no, n=200):
    x = round_no * 2654435761 % 2**32 or 1
    out = []
    for i in range(n):
        x = (x * 1103515245 + 12345) % 2**31
        out.append({
            "id": round_no * n + i,
            "user": "user%d" % (x % 97),
            "tags": ["t%d" % ((x >> s) % 13) for s in range(0, 12, 3)],
            "score": (x % 10000) / 100.0,
            "path": "/api/v1/items/%d/detail" % (x % 5000),
            "nested": {"a": x % 7, "b": [x % 3, x % 5, x % 11], "c": "z" * (x % 40)},
        })
    return out


def log_text(recs):
    lines = []
    for r in recs:
        lines.append('10.%d.%d.%d - %s [01/Dec/2026:06:%02d:%02d +0000] "%s %s" %d %d' % (
            r["id"] % 256, r["nested"]["a"], r["id"] % 200, r["user"], r["id"] % 60, r["id"] % 60,
            ("GET", "POST", "PUT")[r["id"] % 3], r["path"], (200, 404, 500, 301)[r["id"] % 4],
            int(r["score"] * 10)))
    return "\n".join(lines)


def main():
    rounds = int(sys.argv[1])
    digest = hashlib.sha256()
    by_user = collections.defaultdict(list)
    status = collections.Counter()
    words = collections.Counter()
    recent = collections.deque(maxlen=500)
    for rnd in range(rounds):
        recs = records(rnd)
        text = json.dumps(recs, sort_keys=True)
        back = json.loads(text)
        digest.update(hashlib.md5(text.encode()).digest())
        for r in back:
            by_user[r["user"]].append(r["score"])
            recent.append(r["path"])
        log = log_text(back)
        for m in LOG_LINE.finditer(log):
            status[m.group("status")] += 1
            digest.update(m.group("path").encode())
        words.update(WORD.findall(log))
        if rnd % 10 == 9:
            # keep the per-user lists bounded, as a cache would
            for user in list(by_user):
                by_user[user] = by_user[user][-50:]
    summary = {
        "users": len(by_user),
        "status": dict(sorted(status.items())),
        "top_words": words.most_common(5),
        "recent": len(recent),
        "mean": round(sum(sum(v) for v in by_user.values()) / max(1, sum(len(v) for v in by_user.values())), 6),
    }
    digest.update(json.dumps(summary, sort_keys=True).encode())
    print("stdlib_mix %d rounds: %s" % (rounds, digest.hexdigest()))


if __name__ == "__main__":
    main()
