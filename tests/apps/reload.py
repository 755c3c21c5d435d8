# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A Flask app whose URL map is rebuilt at run time, so that new werkzeug
Rule objects sit at the addresses of freed old ones: the case a cache of a
rule's strings keyed by the rule's address gets wrong.  Every generation
renames every template ("/s<slot>/g<gen>/...") and rotates the endpoints
(fresh strings each time), so a stale value is never the right one.

`POST /_reload?mode=natural|placed` (answered outside Flask: no request
record) frees the old map (every old Rule checked dead through weakrefs),
then builds the new one.  "natural" just builds it and reports which
addresses pymalloc happened to reuse; "placed" allocates each new Rule
until it lands on a freed old rule's address (the allocator hands out the
freed blocks of a size class again; misses are swapped for same-sized
fillers so a Rule's separate values array never holds a wanted block).  The
JSON answer lists old and new rules with their id()s and the reuses.
`GET /_rules` lists the current map.  Served by werkzeug's
single-threaded server so no other thread allocates during a reload."""
import gc
import json
import sys
import weakref

from flask import Flask, request
from werkzeug.routing import Rule

SLOTS = 6
PLACE_TRIES = 50000

app = Flask(__name__)
state = {"gen": -1}


class Unlucky(LookupError):
    """The exception the views raise for n == 13."""


def view(n=None):
    if n == 13:
        raise Unlucky(request.endpoint)
    return "%s %s" % (request.endpoint, n)


def specs(gen):
    """(template, endpoint, sample path) per slot; even slots take an int."""
    out = []
    for i in range(SLOTS):
        base = "/s%d/g%d" % (i, gen)
        endpoint = "ep%d_g%d" % ((i + gen) % SLOTS, gen)
        if i % 2 == 0:
            out.append((base + "/<int:n>", endpoint, base + "/7"))
        else:
            out.append((base, endpoint, base))
    return out


def describe(rule):
    return {"id": id(rule), "rule": rule.rule, "endpoint": rule.endpoint,
            "rule_str_id": id(rule.rule)}


def filler_class():
    """A class whose instances take a block of the size of a Rule object
    itself: a Rule also allocates an array for its attribute values (3.11+),
    and keeping those arrays as junk would hold the very blocks we look for."""
    for n in range(16):
        cls = type("Filler%d" % n, (), {"__slots__": tuple("s%d" % i for i in range(n))})
        rule = Rule.__new__(Rule)
        addr = id(rule)
        del rule
        obj = cls()
        # The same block: a Rule starts after its GC header and (3.11+) the
        # managed-dict pre-header, a slotted object after its GC header only.
        if 0 <= addr - id(obj) <= 32:
            return cls
        del obj
    return None


def place(targets, junk, filler):
    """A bare Rule at one of `targets` (freed addresses), or None.  A miss is
    freed and its block taken by a filler, so the next try gets the next
    free block of that size class."""
    for _ in range(PLACE_TRIES):
        obj = Rule.__new__(Rule)
        if id(obj) in targets:
            targets.discard(id(obj))
            return obj
        if filler is not None:
            del obj
            obj = filler()
        junk.append(obj)
    return None


# Made at import: making a class allocates blocks of the very size we look for.
FILLER = filler_class()


def new_rules(sp, mode, targets):
    """The new generation's rules, built right after the old ones were freed
    (everything they need was made before, so the freed blocks are still free)."""
    if mode == "natural":
        return [Rule(t, endpoint=e, methods=["GET"]) for t, e, _ in sp], 0
    junk, rules = [], []
    for t, e, _ in sp:
        r = place(targets, junk, FILLER) or Rule.__new__(Rule)
        r.__init__(t, endpoint=e, methods=["GET"])
        rules.append(r)
    tries = len(junk) + len(rules)
    del junk[:]
    return rules, tries


def install(gen, mode="natural"):
    old = [describe(r) for r in app.url_map.iter_rules()]
    refs = [weakref.ref(r) for r in app.url_map.iter_rules()]
    for r in old:
        if r["endpoint"] != "static":
            app.view_functions.pop(r["endpoint"], None)
    # The map and its rules reference each other, and a finished request
    # (in environ["werkzeug.request"]) may still hold its url_rule: only the
    # collector frees them.
    sp, targets = specs(gen), set(r["id"] for r in old)
    app.url_map = None
    gc.collect()
    rules, tries = new_rules(sp, mode, targets)
    freed = sum(1 for ref in refs if ref() is None)
    url_map = app.url_map_class(rules)
    for r in rules:
        app.view_functions[r.endpoint] = view
    app.url_map = url_map
    state["gen"] = gen
    by_id = dict((r["id"], r) for r in old)
    new = [dict(describe(r), path=p) for r, (_, _, p) in zip(rules, specs(gen))]
    reused = [{"id": n["id"], "old_rule": by_id[n["id"]]["rule"],
               "old_endpoint": by_id[n["id"]]["endpoint"], "new_rule": n["rule"],
               "new_endpoint": n["endpoint"],
               "rule_str_reused": by_id[n["id"]]["rule_str_id"] == n["rule_str_id"]}
              for n in new if n["id"] in by_id]
    return {"gen": gen, "mode": mode, "old": old, "new": new, "freed": freed,
            "old_count": len(refs), "reused": reused, "tries": tries}


install(0)


def reply(start_response, code, doc):
    body = json.dumps(doc).encode()
    start_response(code, [("Content-Type", "application/json"),
                          ("Content-Length", str(len(body)))])
    return [body]


def application(environ, start_response):
    """The control paths, else the Flask app."""
    path = environ.get("PATH_INFO", "")
    if path == "/_rules":
        return reply(start_response, "200 OK", {"gen": state["gen"], "new": [
            dict(describe(r), path=p)
            for r, (_, _, p) in zip(app.url_map.iter_rules(), specs(state["gen"]))]})
    if path == "/_reload":
        mode = "placed" if "mode=placed" in environ.get("QUERY_STRING", "") else "natural"
        return reply(start_response, "200 OK", install(state["gen"] + 1, mode))
    return app(environ, start_response)


if __name__ == "__main__":
    from werkzeug.serving import run_simple
    run_simple("127.0.0.1", int(sys.argv[1]), application, threaded=False)
