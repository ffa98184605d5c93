{{/*
Crossgen library chart: names, labels and the settings every Crossgen workload shares.

Most templates here take a "context" dict built once by "crossgen-common.serviceChart" (or, for
the topics Job, by "crossgen-common.topics"):
  root     the calling chart's top-level context (.Values, .Release, .Chart, ...)
  name     the workload: matching | sessions | notifications | topics
  image    its image values (registry, repository, tag, digest, pullPolicy)
  prefix   its settings prefix: MATCHING | SESSIONS | NOTIFICATIONS
  consumes the topics its consumers read (KEDA lag triggers)
  smtp     true when the service sends mail (notifications)
*/}}

{{/* app.kubernetes.io/name: crossgen-<service>, or nameOverride. */}}
{{- define "crossgen-common.name" -}}
{{- default (printf "crossgen-%s" .name) .root.Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Object names: fullnameOverride, else the release name when it already names the service
("crossgen-matching"), else "<release>-<service>" ("crossgen" + umbrella -> "crossgen-matching").
*/}}
{{- define "crossgen-common.fullname" -}}
{{- if .root.Values.fullnameOverride -}}
{{- .root.Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .name .root.Release.Name -}}
{{- .root.Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .root.Release.Name .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "crossgen-common.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: stable for the life of a release, so never the version. (list ctx component) */}}
{{- define "crossgen-common.selectorLabels" -}}
{{- $ctx := index . 0 -}}
app.kubernetes.io/name: {{ include "crossgen-common.name" $ctx }}
app.kubernetes.io/instance: {{ $ctx.root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* The recommended app.kubernetes.io/* labels. (list ctx component) */}}
{{- define "crossgen-common.labels" -}}
{{- $ctx := index . 0 -}}
{{ include "crossgen-common.selectorLabels" . }}
app.kubernetes.io/version: {{ include "crossgen-common.imageTag" (list $ctx.root $ctx.image) | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/part-of: crossgen
app.kubernetes.io/managed-by: {{ $ctx.root.Release.Service }}
helm.sh/chart: {{ include "crossgen-common.chart" $ctx.root }}
{{- with $ctx.root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* metadata: name + labels (+ namespace). (list ctx component nameSuffix) */}}
{{- define "crossgen-common.metadata" -}}
{{- $ctx := index . 0 -}}
name: {{ include "crossgen-common.fullname" $ctx }}{{ index . 2 }}
namespace: {{ $ctx.root.Release.Namespace }}
labels:
  {{- include "crossgen-common.labels" (list $ctx (index . 1)) | nindent 2 }}
{{- end -}}

{{/* Image tag: the chart's own, else global.image.tag, else the chart's appVersion. (list root image) */}}
{{- define "crossgen-common.imageTag" -}}
{{- $root := index . 0 -}}
{{- $global := (($root.Values.global | default dict).image | default dict) -}}
{{- coalesce (index . 1).tag $global.tag $root.Chart.AppVersion -}}
{{- end -}}

{{/* registry/repository:tag, or @digest when a digest is pinned. (list root image) */}}
{{- define "crossgen-common.image" -}}
{{- $root := index . 0 -}}
{{- $image := index . 1 -}}
{{- $global := (($root.Values.global | default dict).image | default dict) -}}
{{- $registry := coalesce $image.registry $global.registry "" -}}
{{- $repository := ternary $image.repository (printf "%s/%s" $registry $image.repository) (empty $registry) -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (include "crossgen-common.imageTag" .) -}}
{{- end -}}
{{- end -}}

{{- define "crossgen-common.imagePullPolicy" -}}
{{- $root := index . 0 -}}
{{- $global := (($root.Values.global | default dict).image | default dict) -}}
{{- coalesce (index . 1).pullPolicy $global.pullPolicy "IfNotPresent" -}}
{{- end -}}

{{/* The workload's pull secrets plus global.imagePullSecrets. (list values global) */}}
{{- define "crossgen-common.imagePullSecrets" -}}
{{- $own := (index . 0).imagePullSecrets | default list -}}
{{- $global := ((index . 1) | default dict).imagePullSecrets | default list -}}
{{- with concat $own $global | uniq }}
imagePullSecrets:
{{- range . }}
  - name: {{ if kindIs "string" . }}{{ . }}{{ else }}{{ .name }}{{ end }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "crossgen-common.serviceAccountName" -}}
{{- if .root.Values.serviceAccount.create -}}
{{- default (include "crossgen-common.fullname" .) .root.Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .root.Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
A secret reference that may be set on the chart or under global: the chart's own when it names a
secret, else the global one, else nothing. Renders JSON ({} when unset). (list local global path)
*/}}
{{- define "crossgen-common.pickRef" -}}
{{- $local := index . 0 | default dict -}}
{{- $global := index . 1 | default dict -}}
{{- $ref := ternary $local $global (not (empty $local.existingSecret)) -}}
{{- if $ref.existingSecret -}}
{{- if not $ref.key -}}
{{- fail (printf "%s.key: name the key inside secret %q" (index . 2) $ref.existingSecret) -}}
{{- end -}}
{{- dict "existingSecret" $ref.existingSecret "key" $ref.key | toJson -}}
{{- else -}}
{}
{{- end -}}
{{- end -}}

{{/*
The Kafka connection in effect for a workload: each setting from its own `kafka` values when set,
else from `global.kafka`. Renders YAML; callers use `include ... | fromYaml`.
(dict "kafka" <the workload's kafka values> "global" .Values.global "path" <where they live>)
*/}}
{{- define "crossgen-common.kafkaConfig" -}}
{{- $path := .path | default "kafka" -}}
{{- $l := .kafka | default dict -}}
{{- $g := (.global | default dict).kafka | default dict -}}
{{- $ls := $l.sasl | default dict -}}
{{- $gs := $g.sasl | default dict -}}
{{- $lt := $l.tls | default dict -}}
{{- $gt := $g.tls | default dict -}}
{{- $protocol := coalesce $l.securityProtocol $g.securityProtocol "PLAINTEXT" -}}
bootstrapServers: {{ coalesce $l.bootstrapServers $g.bootstrapServers "" | quote }}
securityProtocol: {{ $protocol | quote }}
sasl: {{ hasPrefix "SASL_" $protocol }}
tls: {{ hasSuffix "SSL" $protocol }}
saslMechanism: {{ coalesce $ls.mechanism $gs.mechanism "" | quote }}
saslUsername: {{ include "crossgen-common.pickRef" (list $ls.username $gs.username (printf "%s.sasl.username" $path)) }}
saslPassword: {{ include "crossgen-common.pickRef" (list $ls.password $gs.password (printf "%s.sasl.password" $path)) }}
sslCa: {{ include "crossgen-common.pickRef" (list $lt.ca $gt.ca (printf "%s.tls.ca" $path)) }}
{{- end -}}

{{/* Fails naming the missing value when the Kafka connection is incomplete. (as kafkaConfig) */}}
{{- define "crossgen-common.validateKafka" -}}
{{- $path := .path | default "kafka" -}}
{{- $k := include "crossgen-common.kafkaConfig" . | fromYaml -}}
{{- $or := "(or the same under global.kafka)" -}}
{{- if not $k.bootstrapServers -}}
{{- fail (printf "%s.bootstrapServers %s is required: your Kafka brokers, host:port[,host:port]" $path $or) -}}
{{- end -}}
{{- if $k.sasl -}}
{{- $given := dict "mechanism" $k.saslMechanism "username.existingSecret" $k.saslUsername.existingSecret "password.existingSecret" $k.saslPassword.existingSecret -}}
{{- range $setting := list "mechanism" "username.existingSecret" "password.existingSecret" -}}
{{- if not (get $given $setting) -}}
{{- fail (printf "%s.sasl.%s %s is required when the security protocol is %s" $path $setting $or $k.securityProtocol) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* One env var read from a secret. (list NAME ref) */}}
{{- define "crossgen-common.secretEnv" -}}
- name: {{ index . 0 }}
  valueFrom:
    secretKeyRef:
      name: {{ (index . 1).existingSecret }}
      key: {{ (index . 1).key }}
{{- end -}}

{{/*
<PREFIX>_KAFKA_* env vars: the bootstrap servers and, when the protocol asks for them, the SASL and
TLS settings (credentials and CA only as secret references). (list PREFIX kafkaConfig-args)
*/}}
{{- define "crossgen-common.kafkaEnv" -}}
{{- $p := index . 0 -}}
{{- $k := include "crossgen-common.kafkaConfig" (index . 1) | fromYaml -}}
- name: {{ $p }}_KAFKA_BOOTSTRAP_SERVERS
  value: {{ $k.bootstrapServers | quote }}
- name: {{ $p }}_KAFKA_SECURITY_PROTOCOL
  value: {{ $k.securityProtocol | quote }}
{{- if $k.sasl }}
- name: {{ $p }}_KAFKA_SASL_MECHANISM
  value: {{ $k.saslMechanism | quote }}
{{ include "crossgen-common.secretEnv" (list (printf "%s_KAFKA_SASL_USERNAME" $p) $k.saslUsername) }}
{{ include "crossgen-common.secretEnv" (list (printf "%s_KAFKA_SASL_PASSWORD" $p) $k.saslPassword) }}
{{- end }}
{{- if and $k.tls $k.sslCa.existingSecret }}
{{ include "crossgen-common.secretEnv" (list (printf "%s_KAFKA_SSL_CA" $p) $k.sslCa) }}
{{- end }}
{{- end -}}

{{/* The JWT settings in effect: the chart's own, else global.jwt. Renders YAML. (root) */}}
{{- define "crossgen-common.jwtConfig" -}}
{{- $l := .Values.jwt | default dict -}}
{{- $g := (.Values.global | default dict).jwt | default dict -}}
issuer: {{ coalesce $l.issuer $g.issuer "" | quote }}
audience: {{ coalesce $l.audience $g.audience "crossgen" | quote }}
jwksUrl: {{ coalesce $l.jwksUrl $g.jwksUrl "" | quote }}
publicKey: {{ include "crossgen-common.pickRef" (list $l.publicKey $g.publicKey "jwt.publicKey") }}
{{- end -}}

{{/*
Pod and container hardening, the writable /tmp and scheduling, read from the workload's values
(a service chart's .Values, or the umbrella's .Values.topicsJob). (values)
*/}}
{{- define "crossgen-common.podSecurityContext" -}}
securityContext:
  {{- toYaml .podSecurityContext | nindent 2 }}
{{- end -}}

{{- define "crossgen-common.containerSecurityContext" -}}
securityContext:
  {{- toYaml .securityContext | nindent 2 }}
{{- end -}}

{{/* An emptyDir at /tmp: the only writable path on the read-only root filesystem. */}}
{{- define "crossgen-common.tmpVolume" -}}
- name: tmp
  emptyDir:
    {{- with (.tmpVolume | default dict).sizeLimit }}
    sizeLimit: {{ . }}
    {{- end }}
{{- end -}}

{{- define "crossgen-common.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "crossgen-common.schedulingHints" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}

{{/* Annotations for a hook that runs before install and upgrade. (weight) */}}
{{- define "crossgen-common.preHookAnnotations" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: {{ . | quote }}
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- end -}}
