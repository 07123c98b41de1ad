"""Input protocols. Decoders are plain functions (bytes and settings in, streams out) that import no
web framework: `push` (Loki push API), `content` (bodies); the AWS formats live in `relay.aws`.
The HTTP routes of each job kind are in `relay.sources.http`.
"""
