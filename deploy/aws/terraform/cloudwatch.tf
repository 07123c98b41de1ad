# CloudWatch Logs subscriptions: per log group (each with its own pattern) and/or one account policy.
# The destination is the function, or in firehose mode the delivery stream (through a role).

locals {
  # log_group_names (lambda-promtail's, empty pattern) merged with log_groups (ours, a pattern each).
  log_group_filters = merge(
    { for g in var.log_group_names : g => "" },
    { for g, v in var.log_groups : g => v.filter_pattern },
  )
  subscribe        = length(local.log_group_filters) > 0 || var.account_subscription_policy.enabled
  destination_arn  = local.lambda ? aws_lambda_function.this[0].arn : aws_kinesis_firehose_delivery_stream.this[0].arn
  destination_role = local.lambda ? null : aws_iam_role.logs_to_firehose[0].arn
  account_policy_selection = (
    var.account_subscription_policy.selection_criteria != "" ? var.account_subscription_policy.selection_criteria :
    (local.lambda ? "LogGroupName NOT IN [\"${local.function_log_group}\"]" : "")
  )
}

resource "aws_lambda_permission" "logs" {
  count          = local.lambda && local.subscribe ? 1 : 0
  statement_id   = "${var.name}-allow-cloudwatch-logs"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.this[0].function_name
  principal      = "logs.amazonaws.com"
  source_account = local.account
  source_arn     = "arn:${local.partition}:logs:${local.region}:${local.account}:log-group:*"
}

resource "aws_cloudwatch_log_subscription_filter" "this" {
  for_each        = local.log_group_filters
  name            = "${var.name}-logfilter"
  log_group_name  = each.key
  filter_pattern  = each.value
  destination_arn = local.destination_arn
  role_arn        = local.destination_role
  distribution    = local.lambda ? null : "Random"

  depends_on = [aws_lambda_permission.logs]
}

resource "aws_cloudwatch_log_account_policy" "subscription" {
  count       = var.account_subscription_policy.enabled ? 1 : 0
  policy_name = "${var.name}-subscription"
  policy_type = "SUBSCRIPTION_FILTER_POLICY"
  policy_document = jsonencode(merge(
    {
      DestinationArn = local.destination_arn
      FilterPattern  = var.account_subscription_policy.filter_pattern
      Distribution   = "Random"
    },
    local.lambda ? {} : { RoleArn = local.destination_role },
  ))
  selection_criteria = local.account_policy_selection != "" ? local.account_policy_selection : null

  depends_on = [aws_lambda_permission.logs]
}
