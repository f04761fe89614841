# Cluster controllers from their upstream charts (fetched by the helm provider at apply time, versions pinned).

resource "helm_release" "metrics_server" {
  name       = "metrics-server"
  namespace  = "kube-system"
  repository = "https://kubernetes-sigs.github.io/metrics-server/"
  chart      = "metrics-server"
  version    = var.chart_versions["metrics_server"]
  values = [yamlencode({
    nodeSelector = { "oncograph.io/pool" = "system" }
  })]
}

resource "helm_release" "aws_load_balancer_controller" {
  name       = "aws-load-balancer-controller"
  namespace  = "kube-system"
  repository = "https://aws.github.io/eks-charts"
  chart      = "aws-load-balancer-controller"
  version    = var.chart_versions["aws_load_balancer_controller"]
  values = [yamlencode({
    clusterName    = var.cluster_name
    region         = data.aws_region.current.name
    vpcId          = var.vpc_id
    replicaCount   = 2
    serviceAccount = { create = true, name = "aws-load-balancer-controller" }
    # only TargetGroupBindings: Terraform owns the ALB; the controller must not touch security groups
    enableServiceMutatorWebhook = false
    enableBackendSecurityGroup  = false
    nodeSelector                = { "oncograph.io/pool" = "system" }
  })]
  depends_on = [terraform_data.identities_bound]
}

resource "helm_release" "cluster_autoscaler" {
  name       = "cluster-autoscaler"
  namespace  = "kube-system"
  repository = "https://kubernetes.github.io/autoscaler"
  chart      = "cluster-autoscaler"
  version    = var.chart_versions["cluster_autoscaler"]
  values = [yamlencode({
    autoDiscovery = { clusterName = var.cluster_name }
    awsRegion     = data.aws_region.current.name
    rbac          = { serviceAccount = { create = true, name = "cluster-autoscaler" } }
    nodeSelector  = { "oncograph.io/pool" = "system" }
    extraArgs = {
      "balance-similar-node-groups" = true
      "expander"                    = "least-waste"
      # an idle GPU node costs ~$1/h: give it back after 10 minutes without Ray workers
      "scale-down-unneeded-time"      = "10m"
      "scale-down-delay-after-add"    = "5m"
      "skip-nodes-with-local-storage" = false
    }
  })]
  depends_on = [terraform_data.identities_bound]
}

resource "helm_release" "nvidia_device_plugin" {
  name       = "nvidia-device-plugin"
  namespace  = "kube-system"
  repository = "https://nvidia.github.io/k8s-device-plugin"
  chart      = "nvidia-device-plugin"
  version    = var.chart_versions["nvidia_device_plugin"]
  values = [yamlencode({
    nodeSelector = { "oncograph.io/pool" = "gpu" }
    tolerations  = [{ key = "nvidia.com/gpu", operator = "Exists", effect = "NoSchedule" }]
  })]
}

resource "helm_release" "kuberay_operator" {
  name             = "kuberay-operator"
  namespace        = "kuberay"
  create_namespace = true
  repository       = "https://ray-project.github.io/kuberay-helm/"
  chart            = "kuberay-operator"
  version          = var.chart_versions["kuberay_operator"]
  values = [yamlencode({
    nodeSelector = { "oncograph.io/pool" = "system" }
  })]
}
