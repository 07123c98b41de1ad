# loki-relay on ECS Fargate behind an HTTPS Application Load Balancer.
#
# Stopping a task: ECS first deregisters it from the target groups and waits the deregistration
# delay, so the ALB sends it no new request while requests under way finish; then SIGTERM: the
# relay answers 503 on /ready for shutdown_delay, then finishes requests and flushes its batches
# within graceful_shutdown_timeout (one deadline for both). The deregistration delay is the relay's
# whole drain (5 s + 20 s by default), and the container's stop timeout is that drain plus 10 s to
# exit before SIGKILL (35 s).

data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  drain_seconds = var.shutdown_delay_seconds + var.graceful_shutdown_timeout_seconds
  stop_timeout  = min(local.drain_seconds + 10, 120) # Fargate's ceiling is 120 s

  base_config = yamldecode(var.relay_config != "" ? var.relay_config : file("${path.module}/../../relay-ecs.yaml"))
  with_auth   = var.loki_password_secret_arn != ""
  config = local.with_auth ? merge(local.base_config, {
    clients = [for i, c in local.base_config.clients :
      i == 0 ? merge(c, { basic_auth = { username = "$${LOKI_USERNAME}", password = "$${LOKI_PASSWORD}" } }) : c
    ]
  }) : local.base_config

  ports = {
    push     = { port = 3500, path = null }
    lambda   = { port = 3600, path = "/awslambda/*" }
    firehose = { port = 3700, path = "/awsfirehose/*" }
  }
  ready_port = 9080
  wal_dir    = "/var/lib/loki-relay/wal"

  secrets = concat(
    [{ name = "FIREHOSE_ACCESS_KEY", valueFrom = "${var.firehose_access_key_secret_arn}:api_key::" }],
    local.with_auth ? [{ name = "LOKI_PASSWORD", valueFrom = var.loki_password_secret_arn }] : [],
  )
}

#-- network ----------------------------------------------------------------------------------------

resource "aws_security_group" "alb" {
  name        = "${var.name}-alb"
  description = "HTTPS to the relay load balancer"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each          = toset(var.allowed_cidrs)
  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "alb_to_tasks" {
  security_group_id            = aws_security_group.alb.id
  description                  = "listeners and /ready of the tasks"
  ip_protocol                  = "tcp"
  from_port                    = 3500
  to_port                      = local.ready_port
  referenced_security_group_id = aws_security_group.task.id
}

resource "aws_security_group" "task" {
  name        = "${var.name}-task"
  description = "loki-relay tasks"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "task_from_alb" {
  security_group_id            = aws_security_group.task.id
  description                  = "from the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = 3500
  to_port                      = local.ready_port
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_vpc_security_group_egress_rule" "task_out" {
  security_group_id = aws_security_group.task.id
  description       = "Loki, S3, ECR, CloudWatch Logs and Secrets Manager, wherever they are"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

#-- load balancer ----------------------------------------------------------------------------------

resource "aws_lb" "this" {
  #checkov:skip=CKV2_AWS_28:a WAF is the user's choice; the listeners check their own credentials (Firehose access key, basic auth)
  #checkov:skip=CKV_AWS_91:access logs are on when access_logs_bucket is given; the bucket is the user's
  name                       = var.name
  load_balancer_type         = "application"
  internal                   = var.internal
  subnets                    = var.alb_subnet_ids
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  # A forwarded S3 event is answered once the whole object is read and queued.
  idle_timeout = 300

  dynamic "access_logs" {
    for_each = var.access_logs_bucket != "" ? [1] : []
    content {
      bucket  = var.access_logs_bucket
      prefix  = var.name
      enabled = true
    }
  }
  tags = var.tags
}

resource "aws_lb_target_group" "this" {
  #checkov:skip=CKV_AWS_378:TLS ends at the load balancer; it reaches the tasks inside the VPC, on a security group that admits only it
  for_each             = local.ports
  name                 = "${var.name}-${each.key}"
  port                 = each.value.port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = local.drain_seconds

  health_check {
    path                = "/ready"
    port                = tostring(local.ready_port)
    protocol            = "HTTP"
    matcher             = "200"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }
  tags = var.tags
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this["push"].arn
  }
  tags = var.tags
}

resource "aws_lb_listener_rule" "path" {
  for_each     = { for k, v in local.ports : k => v if v.path != null }
  listener_arn = aws_lb_listener.https.arn
  priority     = each.value.port - 3500 # 100, 200

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this[each.key].arn
  }
  condition {
    path_pattern {
      values = [each.value.path]
    }
  }
  tags = var.tags
}

#-- roles ------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "assume_tasks" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.assume_tasks.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution_secrets" {
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = compact([var.firehose_access_key_secret_arn, var.loki_password_secret_arn])
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  name   = "${var.name}-secrets"
  role   = aws_iam_role.execution.name
  policy = data.aws_iam_policy_document.execution_secrets.json
}

resource "aws_iam_role" "task" {
  name               = "${var.name}-task"
  assume_role_policy = data.aws_iam_policy_document.assume_tasks.json
  tags               = var.tags
}

data "aws_iam_policy_document" "task_s3" {
  count = length(var.s3_read_bucket_arns) > 0 ? 1 : 0
  statement {
    actions   = ["s3:GetObject"]
    resources = [for b in var.s3_read_bucket_arns : "${b}/*"]
  }
}

resource "aws_iam_role_policy" "task_s3" {
  count  = length(var.s3_read_bucket_arns) > 0 ? 1 : 0
  name   = "${var.name}-read-log-objects"
  role   = aws_iam_role.task.name
  policy = data.aws_iam_policy_document.task_s3[0].json
}

#-- service ----------------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "relay" {
  #checkov:skip=CKV_AWS_338:retention is log_retention_days ; a year of the shipper's own logs is cost without use
  #checkov:skip=CKV_AWS_158:the relay's own logs carry no secrets; a KMS key would be one more thing the user must own
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_ecs_cluster" "this" {
  name = var.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
  tags = var.tags
}

resource "aws_ecs_task_definition" "relay" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # The WAL lives on the task's own storage: it survives a relay restart inside the task, not the
  # task itself; unsent entries are flushed at shutdown within the stop timeout.
  ephemeral_storage {
    size_in_gib = var.ephemeral_storage_gib
  }
  volume {
    name = "wal"
  }
  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([
    {
      # Task volumes are created root-owned; the relay runs as uid 10001.
      name       = "volume-owner"
      image      = var.image
      essential  = false
      user       = "0"
      entryPoint = ["chown", "10001:10001", local.wal_dir, "/tmp"]
      mountPoints = [
        { sourceVolume = "wal", containerPath = local.wal_dir },
        { sourceVolume = "tmp", containerPath = "/tmp" },
      ]
      readonlyRootFilesystem = true
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.relay.name
          awslogs-region        = data.aws_region.current.id
          awslogs-stream-prefix = "init"
        }
      }
    },
    {
      name        = "relay"
      image       = var.image
      essential   = true
      stopTimeout = local.stop_timeout
      entryPoint  = ["sh", "-c"]
      command     = ["printf '%s' \"$RELAY_CONFIG\" > /tmp/relay.yaml && exec loki-relay -config.file=/tmp/relay.yaml -config.expand-env"]
      dependsOn   = [{ containerName = "volume-owner", condition = "SUCCESS" }]
      portMappings = [
        for p in concat([for v in values(local.ports) : v.port], [local.ready_port]) :
        { containerPort = p, protocol = "tcp" }
      ]
      environment = [
        { name = "RELAY_CONFIG", value = yamlencode(local.config) },
        { name = "LOKI_URL", value = var.loki_url },
        { name = "LOKI_TENANT_ID", value = var.loki_tenant_id },
        { name = "LOKI_USERNAME", value = var.loki_username },
        { name = "RELAY_WAL_MAX_SIZE", value = var.wal_max_size },
        { name = "RELAY_SHUTDOWN_DELAY", value = "${var.shutdown_delay_seconds}s" },
        { name = "RELAY_GRACEFUL_SHUTDOWN_TIMEOUT", value = "${var.graceful_shutdown_timeout_seconds}s" },
      ]
      secrets = local.secrets
      mountPoints = [
        { sourceVolume = "wal", containerPath = local.wal_dir },
        { sourceVolume = "tmp", containerPath = "/tmp" },
      ]
      readonlyRootFilesystem = true
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.relay.name
          awslogs-region        = data.aws_region.current.id
          awslogs-stream-prefix = "relay"
        }
      }
    },
  ])
  tags = var.tags
}

resource "aws_ecs_service" "relay" {
  name                              = var.name
  cluster                           = aws_ecs_cluster.this.id
  task_definition                   = aws_ecs_task_definition.relay.arn
  launch_type                       = "FARGATE"
  desired_count                     = var.min_tasks
  health_check_grace_period_seconds = 30
  propagate_tags                    = "SERVICE"

  network_configuration {
    subnets          = var.task_subnet_ids
    security_groups  = [aws_security_group.task.id]
    assign_public_ip = var.assign_public_ip
  }

  dynamic "load_balancer" {
    for_each = local.ports
    content {
      target_group_arn = aws_lb_target_group.this[load_balancer.key].arn
      container_name   = "relay"
      container_port   = load_balancer.value.port
    }
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  lifecycle {
    ignore_changes = [desired_count] # autoscaling owns it
  }

  depends_on = [aws_lb_listener.https, aws_lb_listener_rule.path]
  tags       = var.tags
}

#-- autoscaling on CPU -----------------------------------------------------------------------------

resource "aws_appautoscaling_target" "relay" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.relay.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_tasks
  max_capacity       = var.max_tasks
}

resource "aws_appautoscaling_policy" "cpu" {
  name               = "${var.name}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.relay.service_namespace
  resource_id        = aws_appautoscaling_target.relay.resource_id
  scalable_dimension = aws_appautoscaling_target.relay.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target_percent
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}
