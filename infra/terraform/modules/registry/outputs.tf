output "repository_urls" {
  description = "Repository URL per image (<account>.dkr.ecr.<region>.amazonaws.com/<name>/<image>)."
  value       = { for k, r in aws_ecr_repository.this : k => r.repository_url }
}

output "repository_arns" {
  description = "Repository ARN per image (for a CI role's push policy)."
  value       = { for k, r in aws_ecr_repository.this : k => r.arn }
}

output "kms_key_arn" {
  description = "KMS key of the image layers."
  value       = aws_kms_key.ecr.arn
}
