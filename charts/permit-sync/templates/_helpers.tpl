{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "permit-sync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, prefixed to the chart name unless it already contains it. */}}
{{- define "permit-sync.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "permit-sync.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "permit-sync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "permit-sync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{/* Labels of every object, without a component (the PermitPDP is not the controller). */}}
{{- define "permit-sync.baseLabels" -}}
helm.sh/chart: {{ include "permit-sync.chart" . }}
app.kubernetes.io/name: {{ include "permit-sync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: permit-sync
{{- end }}

{{- define "permit-sync.labels" -}}
{{ include "permit-sync.baseLabels" . }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "permit-sync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "permit-sync.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "permit-sync.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* "true" when leader election is on: forced by the value, or more than one replica. */}}
{{- define "permit-sync.leaderElect" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{- define "permit-sync.leaseName" -}}
{{- default (include "permit-sync.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{- define "permit-sync.leaseNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.leaseNamespace }}
{{- end }}

{{/* The watched namespaces, deduplicated, in the order given. */}}
{{- define "permit-sync.watchNamespaces" -}}
{{- .Values.watchNamespaces | uniq | join "," }}
{{- end }}

{{/* Fails rendering on value combinations the schema cannot express. */}}
{{- define "permit-sync.validate" -}}
{{- if and .Values.apiKey.create (not .Values.apiKey.value) }}
{{- fail "apiKey.create is true: set apiKey.value (or create the Secret yourself and keep apiKey.create false)" }}
{{- end }}
{{- if eq .Values.image.tag "latest" }}
{{- fail "image.tag: pin the controller image to a version (or leave it empty for the chart's appVersion); 'latest' is not allowed" }}
{{- end }}
{{- if and .Values.pdp.create (eq .Values.pdp.image.tag "latest") }}
{{- fail "pdp.image.tag: pin the PDP image to a version; 'latest' is not allowed" }}
{{- end }}
{{- if and .Values.pdp.create .Values.watchNamespaces (not (has .Release.Namespace .Values.watchNamespaces)) }}
{{- fail (printf "pdp.create puts a PermitPDP in the release namespace %q, which watchNamespaces %v does not include: the controller would never see it" .Release.Namespace .Values.watchNamespaces) }}
{{- end }}
{{- end }}
