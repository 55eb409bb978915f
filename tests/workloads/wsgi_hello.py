"""The smallest WSGI app, for gunicorn's gevent workers in the soak test: answers "ok"."""


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\n"]
