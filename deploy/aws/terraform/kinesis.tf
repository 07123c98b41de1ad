# kinesis_stream_name: streams created here (as lambda-promtail does) and read by the function.

resource "aws_kinesis_stream" "this" {
  for_each         = local.lambda ? var.kinesis_stream_name : toset([])
  name             = each.value
  shard_count      = 1
  retention_period = 48
  encryption_type  = "KMS"
  kms_key_id       = var.kms_key_arn != "" ? var.kms_key_arn : "alias/aws/kinesis"

  stream_mode_details {
    stream_mode = "PROVISIONED"
  }
  tags = var.tags
}

resource "aws_lambda_event_source_mapping" "kinesis" {
  for_each                       = aws_kinesis_stream.this
  event_source_arn               = each.value.arn
  function_name                  = aws_lambda_function.this[0].arn
  starting_position              = "LATEST"
  bisect_batch_on_function_error = true
  maximum_retry_attempts         = 10
}
