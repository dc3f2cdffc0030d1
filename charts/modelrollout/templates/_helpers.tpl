{{- define "modelrollout.fullname" -}}
{{- printf "%s-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "modelrollout.labels" -}}
app.kubernetes.io/name: modelrollout
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
{{- define "modelrollout.selector" -}}
app.kubernetes.io/name: modelrollout
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "modelrollout.serviceAccount" -}}
{{- default (include "modelrollout.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}
