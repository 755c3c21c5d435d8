# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A small shop API for `make demo`: the request shapes an SRE meets in a real
Flask service (int and str converters, a blueprint under /api/v1, a JSON POST,
abort(404) for missing items, a route that fails every 10th call with a custom
exception, a ~20 ms "database query", /health), so the demo's JSONL shows
route templates, endpoints, statuses and exception types worth looking at.

Deterministic on purpose: no randomness, the failing route counts its calls
per worker process.  Runs under Debian's gunicorn (Flask 2.2.2,
/usr/bin/python3.11) as `gunicorn --chdir tools demo_app:app`, or alone with
`python3 tools/demo_app.py [PORT]` for the Werkzeug dev server."""
import itertools
import time

from flask import Blueprint, Flask, abort, jsonify, request

app = Flask(__name__)
api = Blueprint("api", __name__, url_prefix="/api/v1")

PRODUCTS = {
    1: {"id": 1, "name": "espresso cup", "price_cents": 900, "stock": 12},
    2: {"id": 2, "name": "moka pot", "price_cents": 3400, "stock": 3},
    3: {"id": 3, "name": "grinder", "price_cents": 8900, "stock": 0},
    4: {"id": 4, "name": "beans 1kg", "price_cents": 2100, "stock": 40},
}
CATEGORIES = {"cups": [1], "brewers": [2, 3], "coffee": [4]}

# itertools.count's next() is atomic under the GIL, so threaded servers need no lock.
_checkouts = itertools.count(1)


class PaymentDeclined(Exception):
    """Raised by /api/v1/checkout; Flask turns it into a 500."""


def find_product(product_id):
    product = PRODUCTS.get(product_id)
    if product is None:
        abort(404, description=f"no product {product_id}")
    return product


@app.route("/")
def index():
    return jsonify(service="demo-shop", products=len(PRODUCTS))


@app.route("/health")
def health():
    return "ok"


@app.route("/products")
def list_products():
    return jsonify(list(PRODUCTS.values()))


@app.route("/products/<int:product_id>")
def get_product(product_id):
    return jsonify(find_product(product_id))


@app.route("/categories/<name>")
def get_category(name):
    ids = CATEGORIES.get(name)
    if ids is None:
        abort(404, description=f"no category {name}")
    return jsonify(category=name, products=[PRODUCTS[i] for i in ids])


@app.route("/search")
def search():
    # Stands in for a slow database query: the request waits off-CPU.
    time.sleep(0.020)
    term = request.args.get("q", "").lower()
    hits = [p for p in PRODUCTS.values() if term in p["name"]]
    return jsonify(query=term, hits=hits)


@api.route("/users/<username>/cart")
def get_cart(username):
    return jsonify(user=username, items=[{"product_id": 1, "qty": 2}])


@api.route("/orders", methods=["POST"])
def create_order():
    body = request.get_json(silent=True)
    if not body or "product_id" not in body:
        abort(400, description="expected JSON with product_id")
    product = find_product(int(body["product_id"]))
    qty = int(body.get("qty", 1))
    order = {"product_id": product["id"], "qty": qty, "total_cents": qty * product["price_cents"]}
    return jsonify(order), 201


@api.route("/checkout", methods=["POST"])
def checkout():
    n = next(_checkouts)
    if n % 10 == 0:
        raise PaymentDeclined(f"card declined on checkout {n}")
    return jsonify(checkout=n, status="paid")


app.register_blueprint(api)

if __name__ == "__main__":
    import sys

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    app.run(host="127.0.0.1", port=port, threaded=True)
