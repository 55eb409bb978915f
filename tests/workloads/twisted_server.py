"""A twisted reactor (epollreactor, the Linux default) listening on a TCP port of 127.0.0.1:
SlowProtocol.dataReceived() burns the CPU for --ms ms when the workload connects to itself.
"loop": "twisted"."""
from twisted.internet import epollreactor

epollreactor.install()

from twisted.internet import protocol, reactor, task  # noqa: E402

import _wl  # noqa: E402

ARGS = _wl.parse(__doc__, ms=300)


class SlowProtocol(protocol.Protocol):
    def dataReceived(self, data):
        _wl.burn_cpu(ARGS.ms)
        self.transport.write(b"slow\n")
        self.transport.loseConnection()


class Client(protocol.Protocol):
    def connectionMade(self):
        self.transport.write(b"GET\n")

    def dataReceived(self, data):
        assert data == b"slow\n", data
        reactor.callLater(ARGS.after, reactor.stop)


def main():
    factory = protocol.Factory.forProtocol(SlowProtocol)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1").getHost().port
    # Steady light traffic: the reactor keeps iterating.
    task.LoopingCall(lambda: None).start(0.01)
    reactor.callLater(0.05, _wl.ready)
    reactor.callLater(0.05 + ARGS.warmup, lambda: protocol.ClientCreator(reactor, Client).connectTCP("127.0.0.1", port))
    reactor.run()


if __name__ == "__main__":
    main()
    _wl.exit_now()
