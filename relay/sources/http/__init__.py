"""The HTTP side of the job kinds: thin routes over the decoders (relay.sources.push, relay.aws).

One module per job kind, each with `routes(ingest) -> list[Route]`; `listener` holds what they share.
"""
