# One role per service, bound to its Kubernetes service account with EKS Pod Identity; each allows only what
# that service does. No role has a "*" action, and "*" resources appear only for read-only Describe calls
# that AWS does not scope to resources.
#
#   api      -> rds-db:connect as the app user; read/write exports/ in the exports bucket
#   worker   -> rds-db:connect; read/write exports and features; read the slide buckets (flow runs, the export
#               worker and the Ray pods share it: they run the same code on the same data)
#   migrate  -> rds-db:connect only
#   bootstrap-> read the master secret (creates the app role, the pgvector extension, Prefect's database)
#   load balancer controller -> register/deregister targets in our target groups
#   cluster autoscaler       -> resize only this cluster's node groups

data "aws_partition" "current" {}

data "aws_iam_policy_document" "pod_identity_assume" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }
  }
}

locals {
  roles = {
    api                          = "api"
    worker                       = "worker"
    migrate                      = "migrate"
    db-bootstrap                 = "db-bootstrap"
    aws-load-balancer-controller = "aws-load-balancer-controller"
    cluster-autoscaler           = "cluster-autoscaler"
  }
  # service account -> namespace
  namespaces = {
    api                          = var.namespace
    worker                       = var.namespace
    migrate                      = var.namespace
    db-bootstrap                 = var.namespace
    aws-load-balancer-controller = "kube-system"
    cluster-autoscaler           = "kube-system"
  }
  exports_objects  = "${var.exports_bucket_arn}/exports/*"
  features_objects = "${var.features_bucket_arn}/features/*"
}

resource "aws_iam_role" "this" {
  for_each           = local.roles
  name               = "${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.pod_identity_assume.json
}

resource "aws_eks_pod_identity_association" "this" {
  for_each        = local.roles
  cluster_name    = var.cluster_name
  namespace       = local.namespaces[each.key]
  service_account = each.value
  role_arn        = aws_iam_role.this[each.key].arn
}

# ---------------------------------------------------------------- shared statements

data "aws_iam_policy_document" "db_connect" {
  statement {
    sid       = "ConnectAsAppUser"
    actions   = ["rds-db:connect"]
    resources = [var.db_connect_arn]
  }
}

data "aws_iam_policy_document" "exports_rw" {
  statement {
    sid       = "ListExports"
    actions   = ["s3:ListBucket"]
    resources = [var.exports_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["exports/*", "exports"]
    }
  }
  statement {
    sid       = "ReadWriteExports"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = [local.exports_objects]
  }
  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.s3_kms_key_arn]
  }
}

# ---------------------------------------------------------------- api

resource "aws_iam_role_policy" "api" {
  name   = "api"
  role   = aws_iam_role.this["api"].id
  policy = data.aws_iam_policy_document.api.json
}

data "aws_iam_policy_document" "api" {
  source_policy_documents = [data.aws_iam_policy_document.db_connect.json, data.aws_iam_policy_document.exports_rw.json]
}

# ---------------------------------------------------------------- worker (flow runs, export worker, Ray)

data "aws_iam_policy_document" "worker" {
  source_policy_documents = [data.aws_iam_policy_document.db_connect.json, data.aws_iam_policy_document.exports_rw.json]

  statement {
    sid       = "ListFeatures"
    actions   = ["s3:ListBucket"]
    resources = [var.features_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["features/*", "features"]
    }
  }
  statement {
    sid       = "ReadWriteFeatures"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = [local.features_objects]
  }

  dynamic "statement" {
    for_each = length(var.slide_bucket_arns) > 0 ? [1] : []
    content {
      sid       = "ReadSlides"
      actions   = ["s3:GetObject", "s3:ListBucket"]
      resources = concat(var.slide_bucket_arns, [for a in var.slide_bucket_arns : "${a}/*"])
    }
  }

  dynamic "statement" {
    for_each = length(var.slide_kms_key_arns) > 0 ? [1] : []
    content {
      sid       = "DecryptSlides"
      actions   = ["kms:Decrypt"]
      resources = var.slide_kms_key_arns
    }
  }
}

resource "aws_iam_role_policy" "worker" {
  name   = "worker"
  role   = aws_iam_role.this["worker"].id
  policy = data.aws_iam_policy_document.worker.json
}

# ---------------------------------------------------------------- migrate

resource "aws_iam_role_policy" "migrate" {
  name   = "migrate"
  role   = aws_iam_role.this["migrate"].id
  policy = data.aws_iam_policy_document.db_connect.json
}

# ---------------------------------------------------------------- db bootstrap

data "aws_iam_policy_document" "db_bootstrap" {
  statement {
    sid       = "ReadMasterSecret"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [var.db_master_secret_arn]
  }
  statement {
    sid       = "DecryptMasterSecret"
    actions   = ["kms:Decrypt"]
    resources = [var.db_kms_key_arn]
  }
}

resource "aws_iam_role_policy" "db_bootstrap" {
  name   = "db-bootstrap"
  role   = aws_iam_role.this["db-bootstrap"].id
  policy = data.aws_iam_policy_document.db_bootstrap.json
}

# ---------------------------------------------------------------- AWS Load Balancer Controller
# Terraform owns the ALB, its listeners and target groups; the controller only keeps pod IPs registered in the
# target groups (TargetGroupBinding, no SG management), so it needs far less than its stock policy.

data "aws_iam_policy_document" "lb_controller" {
  statement {
    sid = "Describe"
    actions = [
      "elasticloadbalancing:DescribeLoadBalancers",
      "elasticloadbalancing:DescribeTargetGroups",
      "elasticloadbalancing:DescribeTargetHealth",
      "elasticloadbalancing:DescribeListeners",
      "elasticloadbalancing:DescribeTags",
      "elasticloadbalancing:DescribeTargetGroupAttributes",
      "ec2:DescribeVpcs",
      "ec2:DescribeSubnets",
      "ec2:DescribeSecurityGroups",
      "ec2:DescribeInstances",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeAvailabilityZones",
    ]
    resources = ["*"]
  }
  statement {
    sid       = "RegisterPods"
    actions   = ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"]
    resources = var.target_group_arns
  }
}

resource "aws_iam_role_policy" "lb_controller" {
  name   = "target-group-binding"
  role   = aws_iam_role.this["aws-load-balancer-controller"].id
  policy = data.aws_iam_policy_document.lb_controller.json
}

# ---------------------------------------------------------------- cluster autoscaler

data "aws_iam_policy_document" "cluster_autoscaler" {
  statement {
    sid = "Describe"
    actions = [
      "autoscaling:DescribeAutoScalingGroups",
      "autoscaling:DescribeAutoScalingInstances",
      "autoscaling:DescribeLaunchConfigurations",
      "autoscaling:DescribeScalingActivities",
      "autoscaling:DescribeTags",
      "ec2:DescribeImages",
      "ec2:DescribeInstanceTypes",
      "ec2:DescribeLaunchTemplateVersions",
      "ec2:GetInstanceTypesFromInstanceRequirements",
    ]
    resources = ["*"]
  }
  statement {
    sid       = "DescribeOwnNodegroups"
    actions   = ["eks:DescribeNodegroup"]
    resources = ["arn:${data.aws_partition.current.partition}:eks:*:*:nodegroup/${var.cluster_name}/*"]
  }
  statement {
    sid       = "ResizeOwnGroups"
    actions   = ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"]
    resources = ["arn:${data.aws_partition.current.partition}:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/eks-*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/k8s.io/cluster-autoscaler/${var.cluster_name}"
      values   = ["owned"]
    }
  }
}

resource "aws_iam_role_policy" "cluster_autoscaler" {
  name   = "cluster-autoscaler"
  role   = aws_iam_role.this["cluster-autoscaler"].id
  policy = data.aws_iam_policy_document.cluster_autoscaler.json
}
