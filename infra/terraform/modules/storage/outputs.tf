output "exports_bucket" {
  description = "Name of the exports bucket."
  value       = aws_s3_bucket.data["exports"].id
}

output "features_bucket" {
  description = "Name of the features bucket."
  value       = aws_s3_bucket.data["features"].id
}

output "exports_bucket_arn" {
  description = "ARN of the exports bucket."
  value       = aws_s3_bucket.data["exports"].arn
}

output "features_bucket_arn" {
  description = "ARN of the features bucket."
  value       = aws_s3_bucket.data["features"].arn
}

output "export_root" {
  description = "ONCOGRAPH_EXPORT_ROOT of the API and the workers."
  value       = "s3://${aws_s3_bucket.data["exports"].id}/exports"
}

output "features_root" {
  description = "ONCOGRAPH_FEATURES_ROOT of the workers."
  value       = "s3://${aws_s3_bucket.data["features"].id}/features"
}

output "logs_bucket" {
  description = "Log bucket (S3 server access logs under s3/, ALB access logs under alb/)."
  value       = aws_s3_bucket.logs.id
}

output "kms_key_arn" {
  description = "KMS key of the data buckets (the app roles need Decrypt/GenerateDataKey on it)."
  value       = aws_kms_key.s3.arn
}
