"""A WSGI app for gunicorn's gevent workers: GET /stall?ms=N blocks the worker's hub in libc usleep
(ctypes releases the GIL but not the loop) for N ms; any other path answers at once."""
import ctypes

libc = ctypes.CDLL("libc.so.6", use_errno=True)


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/stall":
        ms = float(environ.get("QUERY_STRING", "ms=300").partition("=")[2] or 300)
        libc.usleep(int(ms * 1000))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok\n"]
