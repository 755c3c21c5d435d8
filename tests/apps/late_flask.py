# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A Python HTTP server that imports Flask only when /start is requested and
then serves a Flask app under /flask/ in-process: the "Flask not loaded yet
at attach time" case."""
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from wsgiref.util import setup_testing_defaults

flask_app = None
lock = threading.Lock()


def load_flask():
    global flask_app
    from flask import Flask
    app = Flask(__name__)

    @app.route("/flask/users/<int:uid>")
    def user(uid):
        return "user %d" % uid

    flask_app = app


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/start":
            with lock:
                if flask_app is None:
                    load_flask()
            return self.reply(200, [], [b"started"])
        if flask_app is None:
            return self.reply(503, [], [b"flask not loaded"])
        environ = {"PATH_INFO": self.path, "REQUEST_METHOD": "GET"}
        setup_testing_defaults(environ)
        out = {}

        def start_response(status, headers, exc_info=None):
            out["status"], out["headers"] = status, headers

        body = flask_app(environ, start_response)
        self.reply(int(out["status"].split()[0]), out["headers"], body)

    def reply(self, code, headers, body):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        for chunk in body:
            self.wfile.write(chunk)


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
