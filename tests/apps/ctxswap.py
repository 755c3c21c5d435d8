# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Flask's ContextVars re-created at run time, each new one at the address
of a freed old one with the other name: the case a cache of "this
ContextVar is flask.request_ctx" keyed by the variable's address gets wrong.

`POST /_swap?mode=req_at_app|app_at_req|natural` (answered outside Flask: no
request record) drops the Flask app, purges every flask module from
sys.modules and collects, so the old `flask.app_ctx` and `flask.request_ctx`
variables are freed; then imports Flask again and builds a new app, served
from then on. The crossed modes first make ContextVars so that the new
`flask.request_ctx` sits where the old `flask.app_ctx` was and the new
`flask.app_ctx` where the old `flask.request_ctx` was (the mode says which
of the two is placed first, hence certain), and hand them to flask.globals
as it is imported (contextvars.ContextVar is swapped for a factory during
the import only): Flask really sets and resets those objects. "natural" lets
the import make its own.
The JSON answer has the old and new variables' id()s.  Served by
werkzeug's single-threaded server, so no other thread allocates."""
import contextvars
import gc
import json
import logging
import sys
import weakref

PLACE_TRIES = 50000
CROSS_TRIES = 5000
REAL_CONTEXTVAR = contextvars.ContextVar
state = {"app": None, "gen": 0}


class Unlucky(LookupError):
    """The exception /fail/<n> raises."""


def build(gen):
    """A new Flask app from freshly imported flask modules."""
    import flask

    app = flask.Flask("ctxswap")

    @app.route("/item/<int:n>")
    def item(n):
        return "gen %d item %d" % (gen, n)

    @app.route("/hello", methods=["GET", "POST"])
    def hello():
        return flask.request.method

    @app.route("/fail/<int:n>")
    def fail(n):
        raise Unlucky(n)

    return app


def current_vars():
    g = sys.modules["flask.globals"]
    return g._cv_app, g._cv_request


def pin_pool(addr, junk):
    """Allocates ContextVar-sized spacers until one lands in the page of
    `addr`: that block's pool then stays in use (an emptied pool may be
    given to another size class, or its arena back to the system) and is
    the pool the allocator takes from next.  Returns the number of tries."""
    for n in range(1, PLACE_TRIES + 1):
        junk.append(REAL_CONTEXTVAR("spacer"))
        if id(junk[-1]) >> 12 == addr >> 12:
            return n
    return PLACE_TRIES


class Factory:
    """contextvars.ContextVar while flask.globals is imported: hands over the
    placed variables by name (and still subscripts for annotations)."""

    def __init__(self, made):
        self.made = made

    def __call__(self, name, *args, **kwargs):
        return self.made.pop(name, None) or REAL_CONTEXTVAR(name, *args, **kwargs)

    def __getitem__(self, item):
        return REAL_CONTEXTVAR[item]


def drop_flask():
    """Frees the old app and every flask module; returns how many modules
    outlived the collection (0 when nothing else holds them)."""
    app = state["app"]
    # Flask's default log handler (added at the first logged error) sits on
    # a logger the logging module keeps, and it references flask.globals.
    logging.getLogger(app.name).handlers.clear()
    state["app"] = app = None
    names = [n for n in sys.modules if n == "flask" or n.startswith("flask.")]
    refs = [weakref.ref(sys.modules.pop(n)) for n in names]
    gc.collect()
    return sum(1 for r in refs if r() is not None)


def sever(var, keep):
    """Drops the references old flask objects still hold to `var` (Flask
    2.2's Request class outlives the purge through werkzeug's caches, and
    with it flask.json, flask.helpers and their LocalProxies): that code
    never runs again, and the variable must really be freed."""
    # No comprehension here: it would make `var` a cell this loop clears.
    for ref in gc.get_referrers(var):
        if ref is keep:
            continue
        if type(ref).__name__ == "cell":
            ref.cell_contents = None
        elif isinstance(ref, dict):
            for k, v in list(ref.items()):
                if v is var:
                    ref[k] = None
        else:
            for name in slot_names(type(ref)):
                try:
                    if object.__getattribute__(ref, name) is var:
                        object.__setattr__(ref, name, None)
                except AttributeError:
                    pass


def slot_names(cls):
    """Attribute names of every __slots__ entry (werkzeug's LocalProxy keeps
    its variable in a private slot)."""
    for klass in cls.__mro__:
        for name in getattr(klass, "__slots__", ()):
            if name.startswith("__") and not name.endswith("__"):
                name = "_%s%s" % (klass.__name__.lstrip("_"), name)
            yield name


def place_crossed(mode, old, junk):
    """Frees both old variables and makes the new ones crossed: the new
    request_ctx where the old app_ctx was and the new app_ctx where the old
    request_ctx was.  The pool is pinned first so that it is the one the
    allocator takes from; freed blocks come back last-in, first-out, so the
    one freed last ("req_at_app": app_ctx's) is found at once, the other
    within a few tries (freeing a variable frees what it held too).
    Returns (new variables by name, tries)."""
    targets = {id(old[0]): "flask.request_ctx", id(old[1]): "flask.app_ctx"}
    tries = pin_pool(id(old[0] if mode == "req_at_app" else old[1]), junk)
    del old[1 if mode == "req_at_app" else 0]  # the target's block is freed last
    del old[0]
    first = "flask.request_ctx" if mode == "req_at_app" else "flask.app_ctx"
    made = {}
    for _ in range(CROSS_TRIES):
        tries += 1
        var = REAL_CONTEXTVAR(first)
        name = targets.get(id(var))
        if name and name != first:
            # The other target: take the block again under the right name.
            del var
            var = REAL_CONTEXTVAR(name)
        if targets.get(id(var)) == var.name and var.name not in made:
            made[var.name] = var
            if len(made) == 2:
                break
        else:
            junk.append(var)
    return made, tries


def swap(mode):
    # The old variables outlive the purge here, so they are the last blocks
    # freed: freed blocks are handed out again last-in, first-out.
    old = list(current_vars())
    old_app, old_req = id(old[0]), id(old[1])
    outlived = drop_flask()
    sever(old[0], old)
    sever(old[1], old)
    made, junk, tries = {}, [], 0
    if mode in ("req_at_app", "app_at_req"):
        made, tries = place_crossed(mode, old, junk)
    del old[:]
    contextvars.ContextVar = Factory(made)
    try:
        state["gen"] += 1
        state["app"] = build(state["gen"])
    finally:
        contextvars.ContextVar = REAL_CONTEXTVAR
    del junk[:]
    new_app, new_req = (id(v) for v in current_vars())
    return {"gen": state["gen"], "mode": mode, "modules_outlived": outlived, "tries": tries,
            "old": {"app_ctx": old_app, "request_ctx": old_req},
            "new": {"app_ctx": new_app, "request_ctx": new_req},
            "names": [v.name for v in current_vars()]}


state["app"] = build(0)


def application(environ, start_response):
    """The control path, else the current Flask app."""
    if environ.get("PATH_INFO") == "/_swap":
        query = environ.get("QUERY_STRING", "")
        mode = query[5:] if query in ("mode=req_at_app", "mode=app_at_req") else "natural"
        body = json.dumps(swap(mode)).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    return state["app"](environ, start_response)


if __name__ == "__main__":
    from werkzeug.serving import run_simple
    run_simple("127.0.0.1", int(sys.argv[1]), application, threaded=False)
