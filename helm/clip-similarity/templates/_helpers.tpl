{{/* Chart name, truncated to the 63 characters Kubernetes allows in a name. */}}
{{- define "clip-similarity.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: the release name, prefixed with the chart name unless it contains it. */}}
{{- define "clip-similarity.fullname" -}}
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

{{- define "clip-similarity.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "clip-similarity.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "clip-similarity.labels" -}}
helm.sh/chart: {{ include "clip-similarity.chart" . }}
{{ include "clip-similarity.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: clip-similarity
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels that select this release's pods; never change them on upgrade. */}}
{{- define "clip-similarity.selectorLabels" -}}
app.kubernetes.io/name: {{ include "clip-similarity.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "clip-similarity.gateway.fullname" -}}
{{- printf "%s-gateway" (include "clip-similarity.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "clip-similarity.gateway.selectorLabels" -}}
{{ include "clip-similarity.selectorLabels" . }}
app.kubernetes.io/component: gateway
{{- end }}

{{- define "clip-similarity.serviceAccountName" -}}
{{- if .Values.gateway.serviceAccount.create }}
{{- default (include "clip-similarity.gateway.fullname" .) .Values.gateway.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.gateway.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The two predictors as a list of dicts, so templates range over them once.
Each: key (image|text), name (InferenceService name), modelName, job (Prometheus job label), values.
*/}}
{{- define "clip-similarity.predictors" -}}
{{- $full := include "clip-similarity.fullname" . }}
{{- $list := list }}
{{- range $key := list "image" "text" }}
{{- $v := get $.Values.predictors $key }}
{{- $name := default (printf "%s-%s" $full $key) $v.name | trunc 45 | trimSuffix "-" }}
{{- $list = append $list (dict "key" $key "name" $name "modelName" $v.modelName "job" (printf "clip-%s" $key) "values" $v) }}
{{- end }}
{{- toJson $list }}
{{- end }}

{{/*
"true" when a predictor may scale to zero (Knative mode, minReplicas 0), else empty.
*/}}
{{- define "clip-similarity.predictorsScaleToZero" -}}
{{- $p := .Values.predictors }}
{{- if and (eq .Values.kserve.deploymentMode "Knative") (or (eq (int $p.image.minReplicas) 0) (eq (int $p.text.minReplicas) 0)) -}}
true
{{- end }}
{{- end }}

{{/*
Image predictor calls a gateway pod keeps in flight (GATEWAY_IMAGE_CALLS_IN_FLIGHT): imageCallsPerPredictorPod
for each image predictor pod there may be; 0 (no bound) in Knative mode and with KEDA, which scale on the
requests or items the predictors hold, and images waiting in the gateway would hide them.
*/}}
{{- define "clip-similarity.imageCallsInFlight" -}}
{{- if or (eq .Values.kserve.deploymentMode "Knative") (eq .Values.kserve.autoscalerClass "keda") -}}
0
{{- else -}}
{{- mul (int .Values.gateway.imageCallsPerPredictorPod) (int .Values.predictors.image.maxReplicas) -}}
{{- end }}
{{- end }}

{{/*
In-cluster URL of a predictor (argument: dict "root" $ "name" <isvc name>).
Standard mode: KServe creates Service <isvc>-predictor, port 80 -> container 8080 (its default non-headless
Service; a KServe configured for headless Services serves 8080 only: override the URL then).
Knative mode: <isvc>-predictor.<ns>.svc.<domain> is the Knative route's cluster-local host, port 80.
The fully qualified form is right in both modes (Knative routes on the Host header).
*/}}
{{- define "clip-similarity.predictorUrl" -}}
{{- printf "http://%s-predictor.%s.svc.%s" .name (include "clip-similarity.namespace" .root) .root.Values.clusterDomain }}
{{- end }}

{{- define "clip-similarity.predictor.image" -}}
{{- $img := .Values.predictor.image }}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag) }}
{{- end }}

{{- define "clip-similarity.gateway.image" -}}
{{- $img := .Values.gateway.image }}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag) }}
{{- end }}

{{/* Whether the Prometheus Operator CRDs can be used: present on the cluster, or forced. */}}
{{- define "clip-similarity.monitoringApi" -}}
{{- if or .Values.monitoring.forceApiVersions (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") }}true{{- end }}
{{- end }}

{{/* Labels the Prometheus Operator's selectors look for: kube-prometheus-stack's default ones select
`release: <its release name>` (monitoring.release), plus any further ones (monitoring.additionalLabels). */}}
{{- define "clip-similarity.monitoringLabels" -}}
{{ include "clip-similarity.labels" . }}
{{- with .Values.monitoring.release }}
release: {{ . | quote }}
{{- end }}
{{- with .Values.monitoring.additionalLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The ingress-nginx body limit that lets every request the gateway accepts through, in MiB: the gateway's
own JSON cap (gateway/inputs.py Limits.body_limit: 64 KiB slack, the image as base64, each text at up to
2000 characters of 12 bytes plus 16), rounded up, plus 1 MiB of headroom for multipart framing.
*/}}
{{- define "clip-similarity.ingressBodyMiB" -}}
{{- $g := .Values.gateway }}
{{- $image := mul (add (mul (div (add (int64 $g.maxImageBytes) 2) 3) 4) 1024) (int64 $g.maxImages) }}
{{- $texts := mul (int64 $g.maxTexts) (add (mul 2000 12) 16) }}
{{- $bytes := add 65536 $image $texts }}
{{- add (div (add $bytes 1048575) 1048576) 1 }}
{{- end }}

{{/* Restricted Pod Security Standard: the container part. */}}
{{- define "clip-similarity.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}
