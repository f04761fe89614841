# dev: everything prod has, sized down: one NAT gateway, a single-AZ burstable database with 7 days of PITR,
# two small system nodes, at most 2 spot GPU nodes, buckets that terraform may empty.

module "stack" {
  source = "../../modules/stack"

  name                  = "oncograph-dev"
  availability_zones    = var.availability_zones
  vpc_cidr              = "10.40.0.0/16"
  nat_gateway_per_az    = false
  bucket_suffix         = var.bucket_suffix
  force_destroy_buckets = true

  db = {
    instance_class        = "db.t4g.medium"
    allocated_storage_gb  = 50
    max_storage_gb        = 200
    multi_az              = false
    deletion_protection   = false
    backup_retention_days = 7
  }

  eks = {
    kubernetes_version    = "1.33"
    public_access_cidrs   = var.public_access_cidrs
    admin_principal_arns  = var.admin_principal_arns
    system_instance_types = ["m7i.large"]
    system_min_size       = 2
    system_max_size       = 4
    gpu_instance_types    = ["g5.xlarge", "g6.xlarge", "g4dn.xlarge"]
    gpu_max_nodes         = var.gpu_max_nodes
    gpu_capacity_type     = "SPOT"
  }

  domain_name             = var.domain_name
  route53_zone_id         = var.route53_zone_id
  certificate_arn         = var.certificate_arn
  alb_deletion_protection = false

  image_tag      = var.image_tag
  min_cell_count = var.min_cell_count
  api_replicas   = { min = 1, max = 3 }
  ui_replicas    = { min = 1, max = 2 }

  prefect_mode                     = var.prefect_mode
  prefect_cloud_api_url            = var.prefect_cloud_api_url
  prefect_cloud_api_key_secret_arn = var.prefect_cloud_api_key_secret_arn
  slide_bucket_arns                = var.slide_bucket_arns
}
