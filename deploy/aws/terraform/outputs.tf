output "lambda_function_arn" {
  description = "ARN of the function (empty in firehose mode)."
  value       = local.lambda ? aws_lambda_function.this[0].arn : ""
}

output "lambda_function_name" {
  description = "Name of the function (empty in firehose mode)."
  value       = local.lambda ? aws_lambda_function.this[0].function_name : ""
}

output "failed_events_queue_url" {
  description = "SQS queue of asynchronous events the function failed on after retries."
  value       = local.lambda ? aws_sqs_queue.failed_events[0].url : ""
}

output "sqs_queue_url" {
  description = "Queue S3 notifications go to (sqs_enabled)."
  value       = local.sqs ? aws_sqs_queue.main[0].url : ""
}

output "sqs_dead_letter_queue_url" {
  description = "Dead-letter queue of the S3 queue (sqs_enabled)."
  value       = local.sqs ? aws_sqs_queue.dead_letter[0].url : ""
}

output "firehose_delivery_stream_arn" {
  description = "ARN of the delivery stream (firehose mode)."
  value       = local.firehose ? aws_kinesis_firehose_delivery_stream.this[0].arn : ""
}

output "firehose_backup_bucket" {
  description = "Bucket of records Firehose could not deliver (firehose mode)."
  value       = local.firehose ? aws_s3_bucket.firehose_backup[0].bucket : ""
}
