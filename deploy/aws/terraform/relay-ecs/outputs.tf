output "url" {
  description = "Base HTTPS URL of the relay (point a DNS name of the certificate at dns_name)."
  value       = "https://${aws_lb.this.dns_name}"
}

output "dns_name" {
  description = "DNS name of the load balancer."
  value       = aws_lb.this.dns_name
}

output "lambda_push_path" {
  description = "Path the forwarder posts to (its relay_url is https://<your name>/awslambda/api/v1/push)."
  value       = "/awslambda/api/v1/push"
}

output "firehose_push_path" {
  description = "Path Firehose delivers to (firehose_url is https://<your name>/awsfirehose/api/v1/push)."
  value       = "/awsfirehose/api/v1/push"
}

output "service_name" {
  description = "ECS service name."
  value       = aws_ecs_service.relay.name
}

output "task_security_group_id" {
  description = "Security group of the tasks (allow it to reach Loki)."
  value       = aws_security_group.task.id
}
