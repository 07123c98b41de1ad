"""SQS partial batch failures, the one rule for the HTTP job and the Lambda function.

Lambda's "Report batch item failures" retries only the messages listed in
`batchItemFailures`. The rule: a message whose body is a malformed event is dropped (a
retry cannot fix it) and not reported; a message whose payload did not fit in what was left
of the request's decompression limit is reported (alone, or in a smaller batch, it fits); a message that fails to deliver (an S3 object not
readable, the relay or Loki not taking it) is reported; once the destination is down
(`stop`), every later message is reported without being tried.

    batch = SqsBatch(parsed.items)
    for item in batch.pending():
        try:
            deliver(item)
        except S3ReadError:
            batch.fail(item.message_id)
        except DestinationDown:
            batch.fail(item.message_id, stop=True)
    return {"batchItemFailures": batch.failures()}
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .events import SqsItem


class SqsBatch:
    def __init__(self, items: list[SqsItem]) -> None:
        self.items = items
        self.invalid: list[SqsItem] = []  # malformed bodies: dropped, for the caller to log and count
        self.failed: set[str] = set()
        self.stopped = False

    def pending(self) -> Iterator[SqsItem]:
        """The messages to deliver, in order; malformed ones go to `invalid`, and after a stop the
        rest are failed without being yielded."""
        for item in self.items:
            if item.retry:
                self.failed.add(item.message_id)
            elif item.error is not None:
                self.invalid.append(item)
            elif self.stopped:
                self.failed.add(item.message_id)
            else:
                yield item

    def fail(self, message_id: str, *, stop: bool = False, also: Iterable[str] = ()) -> None:
        """`message_id` (and `also`, e.g. the messages of a batch Loki refused) must be retried."""
        self.failed.add(message_id)
        self.failed.update(also)
        self.stopped = self.stopped or stop

    def fail_ids(self, message_ids: Iterable[str]) -> None:
        self.failed.update(message_ids)

    def failures(self) -> list[dict[str, str]]:
        """`batchItemFailures`, in the event's order."""
        return [{"itemIdentifier": i.message_id} for i in self.items if i.message_id in self.failed]
