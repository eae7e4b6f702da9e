{{/*
What the predictor InferenceServices may carry in each KServe mode. The rules come from KServe's webhooks
(pkg/apis/serving/v1beta1/inference_service_validation.go: validateAutoScalingCompExtension and the
HPA/KEDA/KPA checks it calls) and Knative's (pkg/apis/serving/fieldmask.go: PodSpecMask,
PodSecurityContextMask); tests/deploy/admission.py restates each check with the function it comes from.
*/}}

{{/* The serving.kserve.io/deploymentMode value: the 0.16+ names, or the 0.15 ones when asked. */}}
{{- define "clip-similarity.deploymentModeName" -}}
{{- $mode := .Values.kserve.deploymentMode }}
{{- if .Values.kserve.legacyDeploymentModeNames }}
{{- ternary "Serverless" "RawDeployment" (eq $mode "Knative") }}
{{- else }}
{{- $mode }}
{{- end }}
{{- end }}

{{/*
Pod placement and security of a predictor (dict "root" $ "gpu" bool), as JSON: securityContext (pod),
containerSecurityContext, nodeSelector, tolerations, affinity. Knative refuses the pod-level ones unless
the matching feature flag is on (kserve.knativeFeatureFlags): the GPU defaults are then left out (NOTES
says so), while a value the user set explicitly fails the install with the flag it needs.
*/}}
{{- define "clip-similarity.predictorScheduling" -}}
{{- $root := .root }}
{{- $p := $root.Values.predictor }}
{{- $knative := eq $root.Values.kserve.deploymentMode "Knative" }}
{{- $flags := $root.Values.kserve.knativeFeatureFlags }}
{{- $out := dict }}
{{- $container := include "clip-similarity.containerSecurityContext" $root | fromYaml }}
{{- range $k := list "runAsUser" "runAsGroup" "runAsNonRoot" "seccompProfile" }}
{{- if hasKey $p.podSecurityContext $k }}
{{- $_ := set $container $k (get $p.podSecurityContext $k) }}
{{- end }}
{{- end }}
{{- $_ := set $out "containerSecurityContext" $container }}
{{- if or (not $knative) (has "kubernetes.podspec-securitycontext" $flags) }}
{{- $_ := set $out "securityContext" $p.podSecurityContext }}
{{- end }}
{{- $nodeSelector := deepCopy $p.nodeSelector }}
{{- $tolerations := $p.tolerations }}
{{- if .gpu }}
{{- $nodeSelector = merge $nodeSelector $p.gpu.nodeSelector }}
{{- $tolerations = concat $p.gpu.tolerations $p.tolerations }}
{{- end }}
{{- $fields := list
  (list "nodeSelector" $nodeSelector $p.nodeSelector "kubernetes.podspec-nodeselector")
  (list "tolerations" $tolerations $p.tolerations "kubernetes.podspec-tolerations")
  (list "affinity" $p.affinity $p.affinity "kubernetes.podspec-affinity") }}
{{- range $fields }}
{{- $name := index . 0 }}{{ $value := index . 1 }}{{ $explicit := index . 2 }}{{ $flag := index . 3 }}
{{- if or (not $knative) (has $flag $flags) }}
{{- if $value }}{{ $_ := set $out $name $value }}{{ end }}
{{- else if $explicit }}
{{- fail (printf "predictor.%s is set, but Knative refuses a pod's %s unless its feature flag %s is Enabled (ConfigMap config-features in knative-serving): enable it and add it to kserve.knativeFeatureFlags" $name $name $flag) }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/*
Autoscaling fields of a predictor (dict "root" $ "values" <predictors.x> "name" <isvc>), as JSON:
scaleMetric + scaleTarget, or autoScaling (KEDA), or nothing (external/none).
- Knative: KServe's KPA check allows only concurrency and rps.
- Standard + hpa: KServe's HPA check allows cpu and memory, and autoScaling metrics of type Resource only.
- Standard + keda: KServe refuses scaleMetric ("ScaleMetric is not supported for KEDA"); the signal goes in
  autoScaling.metrics: External (a Prometheus query, target type Value) or Resource cpu (Utilization).
*/}}
{{- define "clip-similarity.predictorScaling" -}}
{{- $root := .root }}
{{- $v := .values }}
{{- $a := $root.Values.predictor.autoscaling }}
{{- $knative := eq $root.Values.kserve.deploymentMode "Knative" }}
{{- $class := $root.Values.kserve.autoscalerClass }}
{{- $allowed := list }}
{{- $where := "" }}
{{- if $knative }}
{{- $allowed = list "concurrency" "rps" }}{{ $where = "Knative mode (Knative's autoscaler)" }}
{{- else if eq $class "hpa" }}
{{- $allowed = list "cpu" "memory" }}{{ $where = "kserve.autoscalerClass hpa" }}
{{- else if eq $class "keda" }}
{{- $allowed = list "queuedItems" "cpu" }}{{ $where = "kserve.autoscalerClass keda" }}
{{- end }}
{{- $out := dict }}
{{- if $allowed }}
{{- $metric := default (first $allowed) $a.scaleMetric }}
{{- if not (has $metric $allowed) }}
{{- fail (printf "predictor.autoscaling.scaleMetric %q does not work with %s: KServe admits only %s there" $metric $where (join ", " $allowed)) }}
{{- end }}
{{- $target := $v.scaleTarget }}
{{- if kindIs "invalid" $target }}{{ $target = $a.scaleTarget }}{{ end }}
{{- if kindIs "invalid" $target }}
{{- if eq $metric "cpu" }}{{ $target = 70 }}
{{- else if has $metric (list "concurrency" "queuedItems") }}{{ $target = $v.maxBatchSize }}
{{- else }}
{{- fail (printf "predictor.autoscaling.scaleMetric %s needs a target: set predictor.autoscaling.scaleTarget (or predictors.<image|text>.scaleTarget)" $metric) }}
{{- end }}
{{- end }}
{{- $target = int $target }}
{{- if and (has $metric (list "cpu" "memory")) (gt $target 100) }}
{{- fail (printf "scaleTarget %d for %s is a percentage of the request: 1 to 100" $target $metric) }}
{{- end }}
{{- if and (eq $class "keda") (not $knative) }}
{{- if eq $metric "cpu" }}
{{- $_ := set $out "autoScaling" (dict "metrics" (list (dict "type" "Resource" "resource" (dict "name" "cpu" "target" (dict "type" "Utilization" "averageUtilization" $target))))) }}
{{- else }}
{{- $k := $a.keda }}
{{- if not $k.serverAddress }}
{{- fail "predictor.autoscaling.keda.serverAddress is empty: KEDA's Prometheus scaler needs the URL of the Prometheus that scrapes the predictors (e.g. http://prometheus-operated.monitoring.svc:9090)" }}
{{- end }}
{{- /* Items each pod holds (clip_queued_items: decoding, queued, in a pass), summed over this predictor's
pods (KServe names them <isvc>-predictor-...) and smoothed over a minute; KEDA's default AverageValue
target divides the sum by the replicas, so the target is items per pod. */}}
{{- $query := printf "sum(avg_over_time(clip_queued_items{namespace=\"%s\", pod=~\"%s-predictor-.+\"}[1m]))" (include "clip-similarity.namespace" $root) .name }}
{{- $external := dict "metric" (dict "backend" "prometheus" "serverAddress" $k.serverAddress "query" $query) "target" (dict "type" "Value" "value" (toString $target)) }}
{{- with $k.authenticationRef }}
{{- $auth := dict "authenticationRef" (dict "name" .) }}
{{- with $k.authModes }}{{ $_ := set $auth "authModes" . }}{{ end }}
{{- $_ := set $external "authenticationRef" $auth }}
{{- end }}
{{- $_ := set $out "autoScaling" (dict "metrics" (list (dict "type" "External" "external" $external))) }}
{{- end }}
{{- else }}
{{- $_ := set $out "scaleMetric" $metric }}
{{- $_ := set $out "scaleTarget" $target }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/*
Standard mode: how KServe replaces a predictor's pods (dict "root" $ "gpu" bool), as JSON ({} = KServe's
default). A GPU predictor surges by none: a new pod takes the old one's GPU instead of needing a spare.
*/}}
{{- define "clip-similarity.predictorStrategy" -}}
{{- $s := .root.Values.predictor.deploymentStrategy }}
{{- if not (kindIs "invalid" $s) }}
{{- toJson $s }}
{{- else if .gpu }}
{{- toJson (dict "type" "RollingUpdate" "rollingUpdate" (dict "maxSurge" 0 "maxUnavailable" 1)) }}
{{- else }}
{{- toJson (dict) }}
{{- end }}
{{- end }}

{{/*
CLIP_SHUTDOWN_GRACE_S: after SIGTERM the predictor drains REST, then gRPC, each within it; both must end
before SIGKILL, with 5 s to spare. Standard: the pod's grace is terminationGracePeriodSeconds. Knative: the
pod's grace is the revision timeout (BuildPodSpec in pkg/reconciler/revision/resources/deploy.go), and the
container gets SIGTERM only after its preStop (userLifecycle there) has waited out queue-proxy's drain,
at least drainSleepDuration = 30 s (pkg/queue/sharedmain/main.go).
*/}}
{{- define "clip-similarity.predictorShutdownGrace" -}}
{{- $p := .Values.predictor }}
{{- $budget := int $p.terminationGracePeriodSeconds }}
{{- if eq .Values.kserve.deploymentMode "Knative" }}
{{- $budget = sub (int $p.timeoutSeconds) 30 }}
{{- end }}
{{- max 1 (div (sub $budget 5) 2) }}
{{- end }}

{{/*
Liveness failures before a restart (dict "root" $ "values" <predictors.x>): at least 3, and enough that
failures x period covers the predictor's stall timeout. /v2/health/live turns 503 only after a forward pass
has held queued items that long; a probe that merely times out on a busy predictor must not restart it sooner.
*/}}
{{- define "clip-similarity.livenessFailureThreshold" -}}
{{- $stall := .values.stallTimeoutSeconds }}
{{- if kindIs "invalid" $stall }}{{ $stall = 120 }}{{ end }}
{{- $period := int .root.Values.predictor.probes.livenessPeriodSeconds }}
{{- max 3 (div (add (int (ceil $stall)) $period -1) $period) }}
{{- end }}
