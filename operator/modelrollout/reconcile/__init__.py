"""observe -> plan -> apply -> report for one ModelDeployment, around one table of children."""
