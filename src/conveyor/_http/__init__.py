"""The fetch stage: one connection pool per run (`wire`), limits, retries, redirects, safety rules.

``client.HttpClient`` is the only async piece that talks to the network; every decision it
makes (URL checks, header stripping, pacing, backoff, body limits, file names) lives in a
small pure module beside it so that it can be tested without a loop or a server.
"""
