provider "aws" {
  region = var.region
  default_tags {
    tags = {
      Project     = "oncograph"
      Environment = "prod"
      ManagedBy   = "terraform"
      Stack       = "infra/terraform/envs/prod"
    }
  }
}

# The cluster is created in the same apply: the providers authenticate with a short-lived token from the AWS CLI
# (aws eks get-token) as the identity running terraform, which EKS makes cluster admin at creation.
provider "kubernetes" {
  host                   = module.stack.cluster_endpoint
  cluster_ca_certificate = base64decode(module.stack.cluster_ca_certificate)
  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = ["eks", "get-token", "--cluster-name", module.stack.cluster_name, "--region", var.region]
  }
}

provider "helm" {
  kubernetes {
    host                   = module.stack.cluster_endpoint
    cluster_ca_certificate = base64decode(module.stack.cluster_ca_certificate)
    exec {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = ["eks", "get-token", "--cluster-name", module.stack.cluster_name, "--region", var.region]
    }
  }
}
