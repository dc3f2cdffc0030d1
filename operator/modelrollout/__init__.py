"""modelrollout: serve ML models on Kubernetes and roll new versions out safely."""

__version__ = "0.1.0"

GROUP = "modelrollout.io"
VERSION = "v1alpha1"
KIND = "ModelDeployment"
PLURAL = "modeldeployments"

# The server-side apply field manager of everything the operator writes, and the manager a field
# is handed to before the operator stops applying it (see reconcile/plan.py, replicas_handoff).
FIELD_MANAGER = "modelrollout-operator"
HANDOFF_MANAGER = "modelrollout-handoff"
