# Standard-library-heavy work for the battery: re, collections, json,
# hashlib, heapq, itertools, csv, textwrap. Usage: work.py CORPUS OUTPUT
import collections
import csv
import hashlib
import heapq
import io
import itertools
import json
import re
import sys
import textwrap

text = open(sys.argv[1], encoding="ascii").read()
words = re.findall(r"[a-z]+", text.lower())
freq = collections.Counter(words)
bigrams = collections.Counter(zip(words, words[1:]))
by_len = collections.defaultdict(list)
for w in freq:
    by_len[len(w)].append(w)

doc = {
    w: {"n": c, "len": len(w), "sha": hashlib.sha256(w.encode()).hexdigest()[:16]}
    for w, c in freq.items()
}
encoded = json.dumps(doc, sort_keys=True, indent=1)
assert json.loads(encoded) == doc

titled = re.sub(r"\b(\w)(\w*)\b", lambda m: m.group(1).upper() + m.group(2), text)
sentences = [s.strip() for s in re.split(r"[.!?]", text) if s.strip()]
longest = heapq.nlargest(3, sentences, key=lambda s: (len(s), s))
window = collections.deque(maxlen=5)
runs = 0
for w in words:
    if w in window:
        runs += 1
    window.append(w)
pairs = sum(1 for _ in itertools.combinations(sorted(freq)[:300], 2))

out = io.StringIO()
writer = csv.writer(out)
for w, c in sorted(freq.items(), key=lambda kv: (-kv[1], kv[0])):
    writer.writerow([w, c, len(w), doc[w]["sha"]])
with open(sys.argv[2], "w", encoding="ascii") as f:
    f.write(out.getvalue())
    f.write(encoded)

print(len(words), "words,", len(freq), "distinct,", len(bigrams), "bigrams")
print("top:", freq.most_common(5))
print("top bigrams:", bigrams.most_common(3))
print("lengths:", sorted((k, len(v)) for k, v in by_len.items())[:8])
print("sha1 of titled:", hashlib.sha1(titled.encode()).hexdigest())
print("md5 of json:", hashlib.md5(encoded.encode()).hexdigest())
print("repeats in a window of 5:", runs, "pairs:", pairs)
print(textwrap.shorten(longest[0], width=60))
