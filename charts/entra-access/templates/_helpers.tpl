{{/* Chart name, overridable. */}}
{{- define "entra-access.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the prefix of every object name. */}}
{{- define "entra-access.fullname" -}}
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

{{- define "entra-access.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "entra-access.labels" -}}
helm.sh/chart: {{ include "entra-access.chart" . }}
{{ include "entra-access.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels the Deployment selects its pods by (immutable once installed). */}}
{{- define "entra-access.selectorLabels" -}}
app.kubernetes.io/name: {{ include "entra-access.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The operator's ServiceAccount. */}}
{{- define "entra-access.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "entra-access.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false: name the existing ServiceAccount the operator runs as" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The webhook's Service; the serving certificate is issued for its DNS names. */}}
{{- define "entra-access.webhookServiceName" -}}
{{- printf "%s-webhook" (include "entra-access.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "entra-access.metricsServiceName" -}}
{{- printf "%s-metrics" (include "entra-access.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The Secret with tls.crt and tls.key, mounted at the --cert-dir path. */}}
{{- define "entra-access.certSecretName" -}}
{{- default (printf "%s-webhook-tls" (include "entra-access.fullname" .)) .Values.certificates.secretName }}
{{- end }}

{{/* The MutatingWebhookConfiguration; must sort before the AKS add-on's. */}}
{{- define "entra-access.webhookConfigurationName" -}}
{{- $name := .Values.webhook.configurationName }}
{{- $addOn := "azure-wi-webhook-mutating-webhook-configuration" }}
{{- if not (lt $name $addOn) }}
{{- fail (printf "webhook.configurationName %q must sort before %q: webhook configurations run in name order, and the AKS workload-identity add-on only sees the azure.workload.identity/use label if entra-access ran first" $name $addOn) }}
{{- end }}
{{- $name }}
{{- end }}

{{- define "entra-access.leaderElectionNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.namespace }}
{{- end }}

{{- define "entra-access.leaseName" -}}
{{- default (printf "%s-controller" (include "entra-access.fullname" .)) .Values.leaderElection.leaseName }}
{{- end }}

{{/* Where the serving certificate is mounted; passed as --cert-dir. */}}
{{- define "entra-access.certDir" -}}
/tmp/k8s-webhook-server/serving-certs
{{- end }}

{{/* The cert-manager Certificate of the serving certificate (certManager mode). */}}
{{- define "entra-access.certificateName" -}}
{{- printf "%s-webhook" (include "entra-access.fullname" .) }}
{{- end }}

{{/*
The namespaceSelector of a webhook: kube-system and the release namespace are always excluded;
`optIn` adds the opt-in label; webhook.namespaceSelector terms are ANDed on.
Call with (dict "root" $ "optIn" true).
*/}}
{{- define "entra-access.namespaceSelector" -}}
{{- $root := .root }}
{{- $extra := $root.Values.webhook.namespaceSelector }}
{{- $labels := dict }}
{{- if .optIn }}
{{- $_ := set $labels "entra-access.io/workload-identity" "enabled" }}
{{- end }}
{{- range $key, $value := $extra.matchLabels }}
{{- if and (hasKey $labels $key) (ne (get $labels $key) $value) }}
{{- fail (printf "webhook.namespaceSelector.matchLabels cannot change %s" $key) }}
{{- end }}
{{- $_ := set $labels $key $value }}
{{- end }}
{{- if $labels }}
matchLabels:
  {{- toYaml $labels | nindent 2 }}
{{- end }}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values:
      - kube-system
      {{- if ne $root.Release.Namespace "kube-system" }}
      - {{ $root.Release.Namespace }}
      {{- end }}
  {{- with $extra.matchExpressions }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
