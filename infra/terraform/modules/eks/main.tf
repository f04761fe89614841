# EKS: a private cluster (public endpoint only for var.public_access_cidrs), secrets envelope-encrypted with our
# key, every control plane log type exported, access by EKS access entries; two managed node groups:
#   system: on-demand, always on, for the API, UI, Prefect, the Ray head and the controllers;
#   gpu:    NVIDIA nodes from 0 to var.gpu_max_nodes, tainted so only Ray GPU workers land there; KubeRay's
#           autoscaler asks for GPU pods, the cluster autoscaler adds nodes for them and removes idle ones.
# Pods get AWS credentials through EKS Pod Identity (the agent add-on), never the node role.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  policy_prefix = "arn:${data.aws_partition.current.partition}:iam::aws:policy"
  gpu_labels    = { "oncograph.io/pool" = "gpu", "nvidia.com/gpu.present" = "true" }
}

resource "aws_kms_key" "eks" {
  description             = "${var.name}: EKS secrets envelope encryption"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.eks_key.json
}

data "aws_iam_policy_document" "eks_key" {
  #checkov:skip=CKV_AWS_109:A KMS key policy's Resource "*" means this key only; the account root keeps administration (AWS's default key policy); the cluster role gets its use through IAM
  #checkov:skip=CKV_AWS_111:A KMS key policy's Resource "*" means this key only
  #checkov:skip=CKV_AWS_356:A KMS key policy's Resource "*" means this key only (key policies cannot name other resources)
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_kms_alias" "eks" {
  name          = "alias/${var.name}-eks"
  target_key_id = aws_kms_key.eks.key_id
}

# ---------------------------------------------------------------- control plane

data "aws_iam_policy_document" "cluster_assume" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "Service"
      identifiers = ["eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cluster" {
  name               = "${var.name}-eks-cluster"
  assume_role_policy = data.aws_iam_policy_document.cluster_assume.json
}

resource "aws_iam_role_policy_attachment" "cluster" {
  role       = aws_iam_role.cluster.name
  policy_arn = "${local.policy_prefix}/AmazonEKSClusterPolicy"
}

data "aws_iam_policy_document" "cluster_kms" {
  statement {
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant", "kms:ListGrants"]
    resources = [aws_kms_key.eks.arn]
  }
}

resource "aws_iam_role_policy" "cluster_kms" {
  name   = "secrets-encryption"
  role   = aws_iam_role.cluster.id
  policy = data.aws_iam_policy_document.cluster_kms.json
}

resource "aws_cloudwatch_log_group" "cluster" {
  # EKS writes to exactly this name; creating it first sets retention and encryption
  name              = "/aws/eks/${var.name}/cluster"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn
}

resource "aws_eks_cluster" "this" {
  name     = var.name
  version  = var.kubernetes_version
  role_arn = aws_iam_role.cluster.arn

  vpc_config {
    subnet_ids              = var.subnet_ids
    endpoint_private_access = true
    endpoint_public_access  = length(var.public_access_cidrs) > 0
    public_access_cidrs     = length(var.public_access_cidrs) > 0 ? var.public_access_cidrs : null
  }

  access_config {
    authentication_mode                         = "API"
    bootstrap_cluster_creator_admin_permissions = true
  }

  encryption_config {
    resources = ["secrets"]
    provider {
      key_arn = aws_kms_key.eks.arn
    }
  }

  enabled_cluster_log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]

  depends_on = [
    aws_iam_role_policy_attachment.cluster,
    aws_iam_role_policy.cluster_kms,
    aws_cloudwatch_log_group.cluster,
  ]
}

resource "aws_eks_access_entry" "admins" {
  for_each      = toset(var.admin_principal_arns)
  cluster_name  = aws_eks_cluster.this.name
  principal_arn = each.value
}

resource "aws_eks_access_policy_association" "admins" {
  for_each      = toset(var.admin_principal_arns)
  cluster_name  = aws_eks_cluster.this.name
  principal_arn = each.value
  policy_arn    = "arn:${data.aws_partition.current.partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
  access_scope {
    type = "cluster"
  }
  depends_on = [aws_eks_access_entry.admins]
}

# ---------------------------------------------------------------- nodes

data "aws_iam_policy_document" "node_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name               = "${var.name}-eks-node"
  assume_role_policy = data.aws_iam_policy_document.node_assume.json
}

# the node role: join the cluster, pull images, let the VPC CNI assign pod addresses; nothing the apps use
resource "aws_iam_role_policy_attachment" "node" {
  for_each   = toset(["AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly", "AmazonEKS_CNI_Policy"])
  role       = aws_iam_role.node.name
  policy_arn = "${local.policy_prefix}/${each.value}"
}

resource "aws_launch_template" "node" {
  for_each = toset(["system", "gpu"])
  name     = "${var.name}-${each.value}"

  # the cluster security group (control plane <-> nodes) and ours (ALB -> pods, pods -> RDS)
  vpc_security_group_ids = [aws_eks_cluster.this.vpc_config[0].cluster_security_group_id, var.node_security_group_id]

  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
    # 1 hop: pods cannot reach the node's instance credentials; they use Pod Identity
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = var.node_disk_gb
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = { Name = "${var.name}-${each.value}" }
  }
}

resource "aws_eks_node_group" "system" {
  cluster_name    = aws_eks_cluster.this.name
  node_group_name = "system"
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = var.subnet_ids
  ami_type        = "AL2023_x86_64_STANDARD"
  capacity_type   = "ON_DEMAND"
  instance_types  = var.system_instance_types

  launch_template {
    id      = aws_launch_template.node["system"].id
    version = aws_launch_template.node["system"].latest_version
  }

  scaling_config {
    min_size     = var.system_min_size
    desired_size = var.system_min_size
    max_size     = var.system_max_size
  }

  update_config {
    max_unavailable = 1
  }

  labels = { "oncograph.io/pool" = "system" }

  lifecycle {
    # the cluster autoscaler owns the current size
    ignore_changes = [scaling_config[0].desired_size]
  }

  depends_on = [aws_iam_role_policy_attachment.node]
}

resource "aws_eks_node_group" "gpu" {
  cluster_name    = aws_eks_cluster.this.name
  node_group_name = "gpu"
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = var.subnet_ids
  # EKS-optimized AL2023 with the NVIDIA driver and container toolkit; the device plugin advertises nvidia.com/gpu
  ami_type       = "AL2023_x86_64_NVIDIA"
  capacity_type  = var.gpu_capacity_type
  instance_types = var.gpu_instance_types

  launch_template {
    id      = aws_launch_template.node["gpu"].id
    version = aws_launch_template.node["gpu"].latest_version
  }

  scaling_config {
    min_size     = 0
    desired_size = 0
    max_size     = max(var.gpu_max_nodes, 1)
  }

  update_config {
    max_unavailable_percentage = 50
  }

  labels = local.gpu_labels

  taint {
    key    = "nvidia.com/gpu"
    value  = "true"
    effect = "NO_SCHEDULE"
  }

  lifecycle {
    ignore_changes = [scaling_config[0].desired_size]
  }

  depends_on = [aws_iam_role_policy_attachment.node]
}

# Scale from zero: with no GPU node running, the cluster autoscaler learns what a new node would offer from
# these ASG tags (managed node group tags do not reach the ASG, hence aws_autoscaling_group_tag).
locals {
  gpu_template_tags = merge(
    { "k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu" = tostring(var.gpus_per_node) },
    { "k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu" = "true:NoSchedule" },
    { for k, v in local.gpu_labels : "k8s.io/cluster-autoscaler/node-template/label/${k}" => v },
  )
}

resource "aws_autoscaling_group_tag" "gpu" {
  for_each               = local.gpu_template_tags
  autoscaling_group_name = aws_eks_node_group.gpu.resources[0].autoscaling_groups[0].name
  tag {
    key                 = each.key
    value               = each.value
    propagate_at_launch = false
  }
}

# ---------------------------------------------------------------- add-ons

resource "aws_eks_addon" "this" {
  for_each                    = toset(["vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent"])
  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = each.value
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "OVERWRITE"
  # coredns needs nodes to schedule on
  depends_on = [aws_eks_node_group.system]
}
