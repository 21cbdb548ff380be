"""The fetch stage: one connection pool per run (`pool`), limits, retries, redirects, safety rules.

``client.HttpClient`` drives every request; ``pool``, ``wire`` and ``connect`` are the only
pieces that touch sockets. Every decision they make (URL checks, header checks and the
request's bytes, header stripping, the proxy of a host, pacing, backoff, body limits, file
names) lives in a small pure module beside them so that it can be tested without a loop or
a server.
"""
