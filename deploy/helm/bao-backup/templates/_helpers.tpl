{{/* Chart name, at most 63 characters. */}}
{{- define "bao-backup.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's resources: the release name when it contains the chart name. */}}
{{- define "bao-backup.fullname" -}}
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

{{- define "bao-backup.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "bao-backup.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bao-backup.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "bao-backup.labels" -}}
helm.sh/chart: {{ include "bao-backup.chart" . }}
{{ include "bao-backup.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "bao-backup.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "bao-backup.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator's image, also the default executor image of the backup Jobs. */}}
{{- define "bao-backup.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}

{{/* The watched namespaces, after checking rbac.scope against them (fails the render). */}}
{{- define "bao-backup.watchNamespaces" -}}
{{- $scope := .Values.rbac.scope | default "cluster" }}
{{- if not (has $scope (list "cluster" "namespaced")) }}
{{- fail (printf "rbac.scope must be \"cluster\" or \"namespaced\", not %q" $scope) }}
{{- end }}
{{- if and (eq $scope "namespaced") (empty .Values.watchNamespaces) }}
{{- fail "rbac.scope=namespaced needs the namespaces to watch: set watchNamespaces, e.g. --set watchNamespaces={team-a,team-b} (or use rbac.scope=cluster to watch all namespaces)" }}
{{- end }}
{{- range (.Values.watchNamespaces | default list) }}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" (toString .)) }}
{{- fail (printf "watchNamespaces: %q is not a namespace name" (toString .)) }}
{{- end }}
{{- end }}
{{- .Values.watchNamespaces | default list | uniq | toJson }}
{{- end }}

{{/*
The operator's permissions: exactly what `bao-backup operator` calls (src/operator,
src/k8s/informer.cc, src/k8s/events.cc), as a ClusterRole or as a Role per watched namespace.
The leader-election Lease is a separate Role in the release namespace (templates/rbac.yaml).
*/}}
{{- define "bao-backup.rules" -}}
# Informer (list + watch), reconcile reads (get), and removing the openbao.org/trigger-backup
# annotation (merge patch).
- apiGroups: [openbao.org]
  resources: [openbaoclusters]
  verbs: [get, list, watch, patch]
# status.backup, status.operationLock and conditions (status merge patches).
- apiGroups: [openbao.org]
  resources: [openbaoclusters/status]
  verbs: [patch]
# The backup Jobs and ServiceAccounts carry a controller owner reference to their cluster with
# blockOwnerDeletion: true, which the OwnerReferencesPermissionEnforcement admission plugin
# allows only with update on the owner's finalizers.
- apiGroups: [openbao.org]
  resources: [openbaoclusters/finalizers]
  verbs: [update]
# The restore controller's informer (list + watch) and reads (get); its finalizer
# openbao.org/restore-cleanup (merge patch). The backup manager lists them: no backup while a
# restore of the cluster is in progress.
- apiGroups: [openbao.org]
  resources: [openbaorestores]
  verbs: [get, list, watch, patch]
# phase, times, result, conditions of an OpenBaoRestore (status merge patches).
- apiGroups: [openbao.org]
  resources: [openbaorestores/status]
  verbs: [patch]
# The restore and verification Jobs are owned by their OpenBaoRestore with blockOwnerDeletion.
- apiGroups: [openbao.org]
  resources: [openbaorestores/finalizers]
  verbs: [update]
# Jobs: informer (list + watch), get, create, the openbao.org/result-recorded annotation
# (merge patch), and delete: the Jobs of a deleted OpenBaoRestore (backup Jobs are never
# deleted; ttlSecondsAfterFinished does that).
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, patch, delete]
# A finished Job's Pod, for the executor's termination message (the backup result).
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
# Existence and key checks of the referenced Secrets (credentials, token, <cluster>-tls-ca).
# get only: never list or watch.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
# <cluster>-backup-serviceaccount and <cluster>-restore-serviceaccount, which the Jobs run as.
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get, create]
# Events on OpenBaoClusters and OpenBaoRestores (create; repeats are counted with a merge
# patch).
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- end }}
