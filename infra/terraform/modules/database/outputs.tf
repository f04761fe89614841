output "address" {
  description = "Host name of the instance (inside the VPC)."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "Port of the instance."
  value       = aws_db_instance.this.port
}

output "database_name" {
  description = "The application database."
  value       = aws_db_instance.this.db_name
}

output "app_username" {
  description = "The application's IAM-authenticated login role."
  value       = var.app_username
}

output "database_url" {
  description = "ONCOGRAPH_DATABASE_URL: user and host, no password (with ONCOGRAPH_DATABASE_IAM_AUTH=true oncograph signs an IAM token per connection)."
  value       = "postgresql+psycopg://${var.app_username}@${aws_db_instance.this.address}:${aws_db_instance.this.port}/${aws_db_instance.this.db_name}?sslmode=require"
}

output "resource_id" {
  description = "The instance's resource id (dbi-...), the scope of rds-db:connect."
  value       = aws_db_instance.this.resource_id
}

output "connect_arn" {
  description = "ARN an IAM policy allows rds-db:connect on, for the application user only."
  value       = "arn:${data.aws_partition.current.partition}:rds-db:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:dbuser:${aws_db_instance.this.resource_id}/${var.app_username}"
}

output "master_secret_arn" {
  description = "Secrets Manager secret of the master user (RDS-managed, rotated); read only by the bootstrap job."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "kms_key_arn" {
  description = "KMS key of the instance and of its master secret."
  value       = aws_kms_key.db.arn
}

output "instance_identifier" {
  description = "RDS identifier (for restore commands)."
  value       = aws_db_instance.this.identifier
}
