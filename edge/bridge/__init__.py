"""The bridge between the offline door daemon and an MQTT broker (Home Assistant).

Two processes, so that the one on the network never holds the relay:

- the daemon (``facegate run``) serves a UNIX socket (:mod:`edge.bridge.server`): it sends
  decision events and its state, and takes a narrow set of commands (lock, remote unlock,
  face unlock on/off), which it checks itself (:mod:`edge.bridge.commands`);
- the bridge (``facegate bridge``, :mod:`edge.bridge.mqtt`), unprivileged, connects to that
  socket and to the broker, publishes Home Assistant discovery, events and state, and passes
  commands on.

:mod:`edge.bridge.protocol` is the wire format between the two: one JSON object per line.
"""
