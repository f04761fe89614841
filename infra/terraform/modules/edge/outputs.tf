output "alb_dns_name" {
  description = "DNS name of the ALB (point the domain at it if Terraform does not manage the zone)."
  value       = aws_lb.this.dns_name
}

output "alb_arn" {
  description = "ARN of the ALB."
  value       = aws_lb.this.arn
}

output "target_group_arns" {
  description = "Target group ARN per app (api, ui)."
  value       = { for k, tg in aws_lb_target_group.app : k => tg.arn }
}

output "ui_url" {
  description = "Public URL of the UI."
  value       = "https://${var.domain_name}"
}

output "api_public_url" {
  description = "Public URL of the API."
  value       = "https://${local.api_host}"
}
