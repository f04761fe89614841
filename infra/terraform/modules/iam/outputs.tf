output "role_arns" {
  description = "Role ARN per service account."
  value       = { for k, r in aws_iam_role.this : k => r.arn }
}

output "service_accounts" {
  description = "Service account name per role (the compute module creates them with these names)."
  value       = local.roles
}

output "association_ids" {
  description = "Pod Identity association IDs (the compute module starts workloads after them)."
  value       = [for a in aws_eks_pod_identity_association.this : a.association_id]
}
