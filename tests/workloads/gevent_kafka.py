"""confluent_kafka Producer.flush() against a closed port inside a greenlet (kafka_flush()).

librdkafka waits on a condition variable with the GIL released: the hub is blocked in futex for
the whole flush timeout, and gevent cannot see it (no broker needed to reproduce).
"""
from gevent import monkey

monkey.patch_all()

import gevent  # noqa: E402
from confluent_kafka import Producer  # noqa: E402

import _wl  # noqa: E402


def kafka_flush(producer, ms):
    producer.produce("loopstall-test", b"x")  # queued: nothing can deliver it
    _wl.stall_start()
    left = producer.flush(timeout=ms / 1000.0)
    _wl.stall_end()
    assert left == 1, left  # still queued: flush really waited out its timeout


def main():
    args = _wl.parse(__doc__, ms=1000)
    # Port 1 on loopback is closed; keep librdkafka from retrying too noisily.
    producer = Producer({"bootstrap.servers": "127.0.0.1:1", "log_level": 0,
                         "reconnect.backoff.ms": 1000, "reconnect.backoff.max.ms": 1000})
    _wl.gevent_ready_then_wait(args)
    gevent.spawn(kafka_flush, producer, args.ms).join()
    gevent.sleep(args.after)


if __name__ == "__main__":
    main()
    _wl.exit_now()
