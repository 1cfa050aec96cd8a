{{- define "rollback-bot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "rollback-bot.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "rollback-bot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rollback-bot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rollback-bot.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "rollback-bot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "rollback-bot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "rollback-bot.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "rollback-bot.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "rollback-bot.secret" -}}
{{- required "existingSecret: name the Secret that holds SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and DATABASE_URL (tokens never go in values)" .Values.existingSecret -}}
{{- end -}}

{{/* The namespaces the catalog's services live in, plus rbac.extraNamespaces: one per line. */}}
{{- define "rollback-bot.catalogNamespaces" -}}
{{- $namespaces := list -}}
{{- range (.Values.catalog.services | default list) -}}
{{- $namespace := .namespace | default (.helm | default dict).namespace -}}
{{- $namespaces = append $namespaces (required "catalog.services[].namespace (or helm.namespace) is required" $namespace) -}}
{{- end -}}
{{- range .Values.rbac.extraNamespaces -}}
{{- $namespaces = append $namespaces . -}}
{{- end -}}
{{- $namespaces | uniq | sortAlpha | join "\n" -}}
{{- end -}}

{{/* "true" when the bot needs impersonate: rbac.impersonate, or "auto" and a service maps people. */}}
{{- define "rollback-bot.impersonate" -}}
{{- $mode := toString .Values.rbac.impersonate -}}
{{- if eq $mode "auto" -}}
{{- $maps := false -}}
{{- range (.Values.catalog.services | default list) -}}
{{- if .impersonate -}}{{- $maps = true -}}{{- end -}}
{{- end -}}
{{- ternary "true" "" $maps -}}
{{- else if eq $mode "true" -}}
true
{{- else if ne $mode "false" -}}
{{- fail (printf "rbac.impersonate: %q is not auto, true or false" $mode) -}}
{{- end -}}
{{- end -}}

{{/* Environment shared by the Deployment and the migration Job: the Secret's keys. */}}
{{- define "rollback-bot.secretEnv" -}}
{{- $secret := include "rollback-bot.secret" . -}}
{{- range $key := list "SLACK_BOT_TOKEN" "SLACK_SIGNING_SECRET" "DATABASE_URL" }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: {{ $key }}}
{{- end }}
{{- range $key := list "SLACK_APP_TOKEN" "ALERT_WEBHOOK_TOKEN" "METRICS_TOKEN" }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: {{ $key }}, optional: true}
{{- end }}
{{- end -}}

{{/* Namespaces of the catalog's Helm-release services, one per line (deploy/rbac/helm-releases.yaml). */}}
{{- define "rollback-bot.helmNamespaces" -}}
{{- $namespaces := list -}}
{{- range (.Values.catalog.services | default list) -}}
{{- if .helm -}}
{{- $namespaces = append $namespaces (.helm.namespace | default .namespace) -}}
{{- end -}}
{{- end -}}
{{- $namespaces | uniq | sortAlpha | join "\n" -}}
{{- end -}}

{{/* Namespaces for deploy/rbac/gitops.yaml: rbac.gitopsNamespaces (Argo CD's, Flux's) and
those of the catalog's Argo Rollout services, one per line. */}}
{{- define "rollback-bot.gitopsNamespaces" -}}
{{- $namespaces := .Values.rbac.gitopsNamespaces | default list -}}
{{- range (.Values.catalog.services | default list) -}}
{{- if .rollout -}}
{{- $namespaces = append $namespaces .namespace -}}
{{- end -}}
{{- end -}}
{{- $namespaces | uniq | sortAlpha | join "\n" -}}
{{- end -}}
