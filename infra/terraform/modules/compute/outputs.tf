output "app_config" {
  description = "The environment contract: each deployment-provided setting by its variable name (no secrets: the database URL carries no password)."
  value       = local.app_config
}

output "container_env" {
  description = "Which container reads which app_config variable."
  value       = local.container_env
}

output "namespace" {
  description = "Namespace of the workloads."
  value       = kubernetes_namespace_v1.this.metadata[0].name
}

output "prefect_work_pool" {
  description = "The Kubernetes work pool that deployments target."
  value       = var.prefect_work_pool
}

output "migrate_job" {
  description = "Name of this deploy's migration Job."
  value       = kubernetes_job_v1.migrate.metadata[0].name
}
