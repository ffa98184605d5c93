{{/*
Hook Jobs: run before install and before every upgrade, so the release only rolls out new pods
once they have succeeded. Helm waits for each Job to complete; a failed Job fails the release and
is kept for `kubectl logs` until the next attempt replaces it.

(dict "ctx" <context> "component" <label> "suffix" <name suffix> "weight" <hook weight>
      "job" <the Job's values> "command" <list, optional> "args" <list> "env" <rendered env list>
      "volumes" <rendered, optional> "volumeMounts" <rendered, optional>)
*/}}
{{- define "crossgen-common.hookJob" -}}
{{- $ctx := .ctx -}}
{{- $job := .job -}}
{{- $global := $ctx.root.Values.global | default dict -}}
apiVersion: batch/v1
kind: Job
metadata:
  {{- include "crossgen-common.metadata" (list $ctx .component .suffix) | nindent 2 }}
  annotations:
    {{- include "crossgen-common.preHookAnnotations" .weight | nindent 4 }}
spec:
  backoffLimit: {{ $job.backoffLimit }}
  activeDeadlineSeconds: {{ $job.activeDeadlineSeconds }}
  template:
    metadata:
      labels:
        {{- include "crossgen-common.labels" (list $ctx .component) | nindent 8 }}
      {{- with $job.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      restartPolicy: Never
      {{- /* The release's own ServiceAccount does not exist yet before the first install. */}}
      serviceAccountName: {{ $job.serviceAccountName | default "default" }}
      automountServiceAccountToken: false
      {{- with include "crossgen-common.imagePullSecrets" (list $job $global) }}
      {{- . | trim | nindent 6 }}
      {{- end }}
      {{- include "crossgen-common.podSecurityContext" $job | nindent 6 }}
      containers:
        - name: {{ .component }}
          image: {{ include "crossgen-common.image" (list $ctx.root $ctx.image) | quote }}
          imagePullPolicy: {{ include "crossgen-common.imagePullPolicy" (list $ctx.root $ctx.image) }}
          {{- with .command }}
          command: {{ toJson . }}
          {{- end }}
          {{- with .args }}
          args: {{ toJson . }}
          {{- end }}
          env:
            {{- .env | nindent 12 }}
          resources:
            {{- toYaml $job.resources | nindent 12 }}
          {{- include "crossgen-common.containerSecurityContext" $job | nindent 10 }}
          volumeMounts:
            {{- include "crossgen-common.tmpVolumeMount" $job | nindent 12 }}
            {{- with .volumeMounts }}
            {{- . | nindent 12 }}
            {{- end }}
      volumes:
        {{- include "crossgen-common.tmpVolume" $job | nindent 8 }}
        {{- with .volumes }}
        {{- . | nindent 8 }}
        {{- end }}
      {{- include "crossgen-common.schedulingHints" $job | nindent 6 }}
{{- end -}}

{{/*
`python -m crossgen_<service> migrate` with the service's own settings (the CLI validates all of
them, not only the database URL), under the service's hardening, before the new pods start.
Migrations must therefore keep working with the pods of the previous release (expand, then
contract in a later release).
*/}}
{{- define "crossgen-common.migrationsJob" -}}
{{- $v := .root.Values -}}
{{- if $v.migrations.enabled -}}
{{- $job := merge (dict) $v.migrations (pick $v "podSecurityContext" "securityContext" "tmpVolume" "imagePullSecrets" "nodeSelector" "tolerations" "affinity" "priorityClassName") -}}
{{- include "crossgen-common.hookJob" (dict
  "ctx" . "component" "migrations" "suffix" "-migrations" "weight" "-5" "job" $job
  "args" (list "migrate") "env" (include "crossgen-common.serviceEnv" .)) }}
{{- end -}}
{{- end -}}

{{/*
The topics Job of the crossgen chart: creates the topics declared under global.topics, raises
partition counts and applies topic configs (retention, ...) on existing topics. It runs a small
Python step (files/create_topics.py, aiokafka's admin client) in a service image, so it needs no
extra image and connects to Kafka exactly the way the services do. (root of the crossgen chart)
*/}}
{{- define "crossgen-common.topics" -}}
{{- $topics := (.Values.global | default dict).topics | default dict -}}
{{- if $topics.enabled -}}
{{- $job := .Values.topicsJob -}}
{{- $ctx := dict "root" . "name" "topics" "image" $job.image -}}
{{- $kafkaArgs := dict "kafka" $job.kafka "global" .Values.global "path" "topicsJob.kafka" -}}
{{- include "crossgen-common.validateKafka" $kafkaArgs -}}
{{- $spec := include "crossgen-common.topicSpec" $topics -}}
apiVersion: v1
kind: ConfigMap
metadata:
  {{- include "crossgen-common.metadata" (list $ctx "topics" "") | nindent 2 }}
  annotations:
    {{- include "crossgen-common.preHookAnnotations" "-20" | nindent 4 }}
data:
  topics.json: |-
    {{- $spec | nindent 4 }}
  create_topics.py: |-
    {{- .Files.Get "files/create_topics.py" | nindent 4 }}
---
{{ include "crossgen-common.hookJob" (dict
  "ctx" $ctx "component" "topics" "suffix" "" "weight" "-10" "job" $job
  "command" (list "python" "/etc/crossgen-topics/create_topics.py" "/etc/crossgen-topics/topics.json")
  "env" (include "crossgen-common.topicsEnv" (dict "job" $job "kafkaArgs" $kafkaArgs))
  "volumes" (include "crossgen-common.topicsVolume" (include "crossgen-common.fullname" $ctx))
  "volumeMounts" (include "crossgen-common.topicsVolumeMount" .)) }}
{{- end -}}
{{- end -}}

{{/* The ConfigMap above, mounted where the Job's command looks. (ConfigMap name) */}}
{{- define "crossgen-common.topicsVolume" -}}
- name: spec
  configMap:
    name: {{ . }}
{{- end -}}

{{- define "crossgen-common.topicsVolumeMount" -}}
- name: spec
  mountPath: /etc/crossgen-topics
  readOnly: true
{{- end -}}

{{- define "crossgen-common.topicsEnv" -}}
{{ include "crossgen-common.kafkaEnv" (list "TOPICS" .kafkaArgs) }}
- name: TOPICS_CONNECT_TIMEOUT
  value: {{ .job.connectTimeoutSeconds | quote }}
- name: PYTHONDONTWRITEBYTECODE
  value: "1"
{{- end -}}

{{/*
The declared topics as JSON, each with its defaults applied:
[{"name", "partitions", "replicationFactor", "config": {"retention.ms": "...", ...}}]. (global.topics)
*/}}
{{- define "crossgen-common.topicSpec" -}}
{{- $defaults := .defaults | default dict -}}
{{- $spec := list -}}
{{- range $name, $topic := .items -}}
{{- $topic = $topic | default dict -}}
{{- $config := merge (dict) ($topic.config | default dict) ($defaults.config | default dict) -}}
{{- $retention := ternary $defaults.retentionMs $topic.retentionMs (kindIs "invalid" $topic.retentionMs) -}}
{{- if not (kindIs "invalid" $retention) -}}
{{- $_ := set $config "retention.ms" (printf "%d" (int64 $retention)) -}}
{{- end -}}
{{- $spec = append $spec (dict
  "name" $name
  "partitions" (int64 (coalesce $topic.partitions $defaults.partitions))
  "replicationFactor" (int64 (coalesce $topic.replicationFactor $defaults.replicationFactor))
  "config" $config) -}}
{{- end -}}
{{- toPrettyJson $spec -}}
{{- end -}}
