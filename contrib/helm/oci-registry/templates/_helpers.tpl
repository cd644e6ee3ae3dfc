{{/* Names and labels shared by the templates. */}}
{{- define "oci-registry.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "oci-registry.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "oci-registry.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "oci-registry.selectorLabels" -}}
app.kubernetes.io/name: {{ include "oci-registry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "oci-registry.labels" -}}
{{ include "oci-registry.selectorLabels" . }}
helm.sh/chart: {{ include "oci-registry.chart" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/*
The storage's environment of the responder, shared by the Deployment and the
gc CronJob (which gets the same bucket, keys and prefix).
*/}}
{{- define "oci-registry.storageEnv" -}}
{{- if eq .Values.registry.storage.mode "filesystem" -}}
- name: FILESYSTEM_ROOT
  value: {{ .Values.registry.storage.filesystem.root | quote }}
{{- else -}}
- name: S3_HOST
  value: {{ .Values.registry.storage.s3.host | quote }}
- name: S3_REGION
  value: {{ .Values.registry.storage.s3.region | quote }}
- name: S3_BUCKET
  value: {{ required "registry.storage.s3.bucket is required" .Values.registry.storage.s3.bucket | quote }}
- name: S3_PATH_STYLE
  value: {{ .Values.registry.storage.s3.path_style | quote }}
- name: S3_PREFIX
  value: {{ .Values.registry.storage.s3.prefix | quote }}
- name: S3_LEASE_TTL
  value: {{ .Values.registry.storage.s3.lease_ttl | quote }}
- name: S3_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ required "registry.storage.s3.auth.secret is required" .Values.registry.storage.s3.auth.secret }}
      key: {{ .Values.registry.storage.s3.auth.access_key }}
- name: S3_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.registry.storage.s3.auth.secret }}
      key: {{ .Values.registry.storage.s3.auth.secret_key }}
# Misses are spooled to an unnamed file (O_TMPFILE) in TMPDIR
# while they stream: the root filesystem is read-only.
- name: TMPDIR
  value: /tmp
{{- end -}}
{{- end -}}

{{/* The responder container's security context, shared with the gc CronJob. */}}
{{- define "oci-registry.securityContext" -}}
runAsUser: 10001
runAsGroup: 10001
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}
