output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "public_subnet_ids" {
  description = "Public subnets (ALB only)."
  value       = aws_subnet.public[*].id
}

output "compute_subnet_ids" {
  description = "Private subnets of the EKS nodes and pods."
  value       = aws_subnet.compute[*].id
}

output "data_subnet_ids" {
  description = "Private subnets of RDS (no route out of the VPC)."
  value       = aws_subnet.data[*].id
}

output "alb_security_group_id" {
  description = "Security group of the ALB."
  value       = aws_security_group.alb.id
}

output "node_security_group_id" {
  description = "Security group of the EKS nodes and pods."
  value       = aws_security_group.nodes.id
}

output "database_security_group_id" {
  description = "Security group of RDS."
  value       = aws_security_group.database.id
}

output "logs_kms_key_arn" {
  description = "KMS key for CloudWatch log groups (flow logs, EKS control plane, WAF)."
  value       = aws_kms_key.logs.arn
}

output "nat_public_ips" {
  description = "Egress addresses of the NAT gateways (allow-list these at external data sources if needed)."
  value       = aws_eip.nat[*].public_ip
}
