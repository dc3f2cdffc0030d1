"""modelrollout: serve ML models on Kubernetes and roll new versions out safely."""

__version__ = "0.1.0"

GROUP = "modelrollout.io"
VERSION = "v1alpha1"
KIND = "ModelDeployment"
PLURAL = "modeldeployments"
