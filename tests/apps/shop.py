# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The integration-test Flask app: every request shape the acceptance tests
check (converters, a prefixed blueprint, JSON POST, 404, 500, abort(403),
redirect, a 50 ms sleep).  Works with Flask 2.2 and 3.x."""
import time

from flask import Blueprint, Flask, abort, jsonify, redirect, request

app = Flask(__name__)
api = Blueprint("api", __name__, url_prefix="/api/v1")


class PaymentDeclined(Exception):
    pass


@app.route("/")
def index():
    return "hello"


@app.route("/users/<int:uid>")
def get_user(uid):
    return jsonify(id=uid)


@app.route("/hello/<name>")
def hello(name):
    return "hello " + name


@app.route("/orders", methods=["POST"])
def create_order():
    body = request.get_json()
    return jsonify(received=body), 201


@app.route("/boom")
def boom():
    raise PaymentDeclined("card declined")


@app.route("/divide/<int:n>")
def divide(n):
    return str(100 // n)


@app.route("/admin")
def admin():
    abort(403)


@app.route("/old")
def old():
    return redirect("/")


@app.route("/slow")
def slow():
    time.sleep(0.05)
    return "slow"


@app.route("/pid")
def pid():
    import os
    return str(os.getpid())


@app.route("/health")
def health():
    return "ok"


@api.route("/items/<int:item_id>")
def get_item(item_id):
    return jsonify(item=item_id)


@api.route("/items", methods=["GET", "POST"])
def items():
    return jsonify(method=request.method)


app.register_blueprint(api)

if __name__ == "__main__":
    import sys
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    app.run(host="127.0.0.1", port=port, threaded=True)
