{{/*
Everything one Crossgen service chart installs. A service chart's only template is

  {{ include "crossgen-common.serviceChart" (dict "root" . "name" "matching" "consumes" (list ...)) }}

so all three services render from the same templates and differ only in values.
*/}}
{{- define "crossgen-common.serviceChart" -}}
{{- $ctx := merge (dict "prefix" (upper .name) "image" .root.Values.image) . -}}
{{- include "crossgen-common.validateService" $ctx -}}
{{- $documents := list
  (include "crossgen-common.serviceAccount" $ctx)
  (include "crossgen-common.service" $ctx)
  (include "crossgen-common.deployment" $ctx)
  (include "crossgen-common.podDisruptionBudget" $ctx)
  (include "crossgen-common.horizontalPodAutoscaler" $ctx)
  (include "crossgen-common.scaledObject" $ctx)
  (include "crossgen-common.networkPolicy" $ctx)
  (include "crossgen-common.serviceMonitor" $ctx)
  (include "crossgen-common.migrationsJob" $ctx)
-}}
{{- range $documents }}
{{- if trim . }}
---
{{ trim . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Cross-field rules the values schema cannot express; each message names the value to fix. */}}
{{- define "crossgen-common.validateService" -}}
{{- $v := .root.Values -}}
{{- include "crossgen-common.validateKafka" (dict "kafka" .root.Values.kafka "global" .root.Values.global) -}}
{{- $jwt := include "crossgen-common.jwtConfig" .root | fromYaml -}}
{{- if not $jwt.issuer -}}
{{- fail "jwt.issuer (or global.jwt.issuer) is required: the `iss` of the tokens this service accepts" -}}
{{- end -}}
{{- if not (or $jwt.jwksUrl $jwt.publicKey.existingSecret) -}}
{{- fail "jwt.jwksUrl or jwt.publicKey.existingSecret (or their global.jwt counterparts) is required: where the token signing keys come from" -}}
{{- end -}}
{{- if and $v.autoscaling.enabled (lt (int $v.autoscaling.maxReplicas) (int $v.autoscaling.minReplicas)) -}}
{{- fail (printf "autoscaling.maxReplicas (%v) must not be below autoscaling.minReplicas (%v)" $v.autoscaling.maxReplicas $v.autoscaling.minReplicas) -}}
{{- end -}}
{{- if and $v.autoscaling.keda.enabled (not $v.autoscaling.enabled) -}}
{{- fail "autoscaling.keda.enabled needs autoscaling.enabled: true (autoscaling.minReplicas and maxReplicas bound KEDA too)" -}}
{{- end -}}
{{- if and $v.autoscaling.enabled $v.autoscaling.keda.enabled (not (or $v.autoscaling.keda.topics .consumes)) -}}
{{- fail "autoscaling.keda.topics is required: this service consumes no topic to measure lag on" -}}
{{- end -}}
{{- include "crossgen-common.validateInboxRetention" . -}}
{{- $grace := include "crossgen-common.terminationGracePeriod" .root | int -}}
{{- $drain := add (int $v.settings.shutdownTimeout) (int $v.lifecycle.preStopSleepSeconds) | int -}}
{{- if le $grace $drain -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be above settings.shutdownTimeout + lifecycle.preStopSleepSeconds (%d), or the pod is killed mid-drain" $grace $drain) -}}
{{- end -}}
{{- if .smtp -}}
{{- if not $v.publicUrl -}}
{{- fail "publicUrl is required: the address people reach notifications at, the base of every unsubscribe link (e.g. https://crossgen.example.com/notifications)" -}}
{{- end -}}
{{- if not $v.smtp.host -}}
{{- fail "smtp.host is required: the SMTP relay notifications are sent through" -}}
{{- end -}}
{{- if not $v.smtp.sender -}}
{{- fail "smtp.sender is required: the From address of notification mail" -}}
{{- end -}}
{{- if and $v.smtp.password.existingSecret (not $v.smtp.username.existingSecret) -}}
{{- fail "smtp.username.existingSecret is required when smtp.password.existingSecret is set" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Seconds Kubernetes waits after SIGTERM: set, or shutdown timeout + preStop pause + 10 s. (root) */}}
{{- define "crossgen-common.terminationGracePeriod" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds -}}
{{- add (int .Values.settings.shutdownTimeout) (int .Values.lifecycle.preStopSleepSeconds) 10 -}}
{{- else -}}
{{- .Values.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{/*
The inbox remembers handled ids settings.inboxRetentionDays (0: forever); Kafka can deliver a copy of
an event as long as its topic keeps it. Checked against the topics the crossgen chart declares.
*/}}
{{- define "crossgen-common.validateInboxRetention" -}}
{{- $days := .root.Values.settings.inboxRetentionDays -}}
{{- $topics := dig "topics" dict (.root.Values.global | default dict) -}}
{{- if and $days $topics.enabled -}}
{{- $defaults := $topics.defaults | default dict -}}
{{- range .consumes -}}
{{- $topic := index ($topics.items | default dict) . | default dict -}}
{{- $ms := ternary $defaults.retentionMs $topic.retentionMs (kindIs "invalid" $topic.retentionMs) -}}
{{- if and (not (kindIs "invalid" $ms)) (or (lt (float64 $ms) 0.0) (gt (float64 $ms) (mulf $days 86400000))) -}}
{{- fail (printf "settings.inboxRetentionDays (%v) must outlast the retention of %s, which this service reads (retentionMs %v, -1 is forever): a copy of an event whose id the inbox forgot would be handled twice. Raise it, or set 0 to keep the ids forever" $days . $ms) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Whether the service creates its topics itself: never when the crossgen chart manages them. */}}
{{- define "crossgen-common.serviceCreatesTopics" -}}
{{- $managed := dig "topics" "enabled" false (.Values.global | default dict) -}}
{{- and .Values.kafka.createTopics (not $managed) -}}
{{- end -}}

{{/*
The service's settings as <PREFIX>_* env vars (pydantic-settings names). Secrets only ever as
valueFrom.secretKeyRef: the database URL, Kafka credentials and CA, the JWT public key, SMTP login.
*/}}
{{- define "crossgen-common.serviceEnv" -}}
{{- $p := .prefix -}}
{{- $v := .root.Values -}}
{{- $jwt := include "crossgen-common.jwtConfig" .root | fromYaml -}}
{{- $createTopics := include "crossgen-common.serviceCreatesTopics" .root -}}
- name: {{ $p }}_HTTP_HOST
  value: "0.0.0.0"
- name: {{ $p }}_HTTP_PORT
  value: {{ $v.containerPort | quote }}
{{ include "crossgen-common.secretEnv" (list (printf "%s_DATABASE_URL" $p) $v.database.url) }}
{{ include "crossgen-common.kafkaEnv" (list $p (dict "kafka" .root.Values.kafka "global" .root.Values.global)) }}
- name: {{ $p }}_CREATE_TOPICS
  value: {{ $createTopics | quote }}
{{- if eq $createTopics "true" }}
- name: {{ $p }}_TOPIC_PARTITIONS
  value: {{ $v.kafka.topicPartitions | quote }}
- name: {{ $p }}_TOPIC_REPLICATION_FACTOR
  value: {{ $v.kafka.topicReplicationFactor | quote }}
{{- end }}
- name: {{ $p }}_JWT_ISSUER
  value: {{ $jwt.issuer | quote }}
- name: {{ $p }}_JWT_AUDIENCE
  value: {{ $jwt.audience | quote }}
{{- if $jwt.jwksUrl }}
- name: {{ $p }}_JWT_JWKS_URL
  value: {{ $jwt.jwksUrl | quote }}
{{- end }}
{{- if $jwt.publicKey.existingSecret }}
{{ include "crossgen-common.secretEnv" (list (printf "%s_JWT_PUBLIC_KEY" $p) $jwt.publicKey) }}
{{- end }}
- name: {{ $p }}_OUTBOX_POLL_INTERVAL
  value: {{ $v.settings.outboxPollInterval | quote }}
- name: {{ $p }}_SHUTDOWN_TIMEOUT
  value: {{ $v.settings.shutdownTimeout | quote }}
- name: {{ $p }}_OUTBOX_RETENTION_HOURS
  value: {{ $v.settings.outboxRetentionHours | quote }}
- name: {{ $p }}_INBOX_RETENTION_DAYS
  value: {{ $v.settings.inboxRetentionDays | quote }}
{{- range $name, $value := $v.settings.extra }}
- name: {{ $p }}_{{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- if .smtp }}
- name: {{ $p }}_PUBLIC_URL
  value: {{ $v.publicUrl | quote }}
- name: {{ $p }}_SMTP_HOST
  value: {{ $v.smtp.host | quote }}
- name: {{ $p }}_SMTP_PORT
  value: {{ $v.smtp.port | quote }}
- name: {{ $p }}_SMTP_SENDER
  value: {{ $v.smtp.sender | quote }}
- name: {{ $p }}_SMTP_STARTTLS
  value: {{ $v.smtp.starttls | quote }}
{{- if $v.smtp.username.existingSecret }}
{{ include "crossgen-common.secretEnv" (list (printf "%s_SMTP_USERNAME" $p) $v.smtp.username) }}
{{- end }}
{{- if $v.smtp.password.existingSecret }}
{{ include "crossgen-common.secretEnv" (list (printf "%s_SMTP_PASSWORD" $p) $v.smtp.password) }}
{{- end }}
{{- end }}
{{- with $v.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "crossgen-common.serviceAccount" -}}
{{- if .root.Values.serviceAccount.create }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "crossgen-common.serviceAccountName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "crossgen-common.labels" (list . "server") | nindent 4 }}
  {{- with .root.Values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: {{ .root.Values.serviceAccount.automountToken }}
{{- end }}
{{- end -}}

{{- define "crossgen-common.service" -}}
apiVersion: v1
kind: Service
metadata:
  {{- include "crossgen-common.metadata" (list . "server" "") | nindent 2 }}
  {{- with .root.Values.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ .root.Values.service.type }}
  selector:
    {{- include "crossgen-common.selectorLabels" (list . "server") | nindent 4 }}
  ports:
    - name: http
      port: {{ .root.Values.service.port }}
      targetPort: http
      protocol: TCP
{{- end -}}

{{- define "crossgen-common.deployment" -}}
{{- $v := .root.Values -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  {{- include "crossgen-common.metadata" (list . "server" "") | nindent 2 }}
spec:
  {{- if not $v.autoscaling.enabled }}
  replicas: {{ $v.replicaCount }}
  {{- end }}
  revisionHistoryLimit: {{ $v.revisionHistoryLimit }}
  strategy:
    {{- toYaml $v.strategy | nindent 4 }}
  selector:
    matchLabels:
      {{- include "crossgen-common.selectorLabels" (list . "server") | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "crossgen-common.labels" (list . "server") | nindent 8 }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $v.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "crossgen-common.serviceAccountName" . }}
      automountServiceAccountToken: {{ $v.serviceAccount.automountToken }}
      {{- with include "crossgen-common.imagePullSecrets" (list $v $v.global) }}
      {{- . | trim | nindent 6 }}
      {{- end }}
      {{- include "crossgen-common.podSecurityContext" $v | nindent 6 }}
      terminationGracePeriodSeconds: {{ include "crossgen-common.terminationGracePeriod" .root }}
      containers:
        - name: {{ .name }}
          image: {{ include "crossgen-common.image" (list .root $v.image) | quote }}
          imagePullPolicy: {{ include "crossgen-common.imagePullPolicy" (list .root $v.image) }}
          args: ["serve"]
          ports:
            - name: http
              containerPort: {{ $v.containerPort }}
              protocol: TCP
          env:
            {{- include "crossgen-common.serviceEnv" . | nindent 12 }}
          startupProbe:
            httpGet:
              path: /health/live
              port: http
            {{- toYaml $v.probes.startup | nindent 12 }}
          livenessProbe:
            httpGet:
              path: /health/live
              port: http
            {{- toYaml $v.probes.liveness | nindent 12 }}
          readinessProbe:
            httpGet:
              path: /health/ready
              port: http
            {{- toYaml $v.probes.readiness | nindent 12 }}
          {{- if $v.lifecycle.preStopSleepSeconds }}
          lifecycle:
            preStop:
              exec:
                # Lets endpoints and load balancers stop sending traffic before SIGTERM.
                command: ["sleep", {{ $v.lifecycle.preStopSleepSeconds | quote }}]
          {{- end }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          {{- include "crossgen-common.containerSecurityContext" $v | nindent 10 }}
          volumeMounts:
            {{- include "crossgen-common.tmpVolumeMount" $v | nindent 12 }}
      volumes:
        {{- include "crossgen-common.tmpVolume" $v | nindent 8 }}
      {{- if or $v.topologySpread.enabled $v.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- if $v.topologySpread.enabled }}
        {{- range list "kubernetes.io/hostname" "topology.kubernetes.io/zone" }}
        - maxSkew: 1
          topologyKey: {{ . }}
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "crossgen-common.selectorLabels" (list $ "server") | nindent 14 }}
        {{- end }}
        {{- end }}
        {{- with $v.topologySpreadConstraints }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- end }}
      {{- include "crossgen-common.schedulingHints" $v | nindent 6 }}
{{- end -}}

{{- define "crossgen-common.podDisruptionBudget" -}}
{{- $pdb := .root.Values.podDisruptionBudget -}}
{{- if $pdb.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  {{- include "crossgen-common.metadata" (list . "server" "") | nindent 2 }}
spec:
  {{- if not (kindIs "invalid" $pdb.minAvailable) }}
  {{- /* minAvailable, when set, wins over maxUnavailable */}}
  minAvailable: {{ $pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $pdb.maxUnavailable | default 1 }}
  {{- end }}
  {{- with $pdb.unhealthyPodEvictionPolicy }}
  unhealthyPodEvictionPolicy: {{ . }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "crossgen-common.selectorLabels" (list . "server") | nindent 6 }}
{{- end }}
{{- end -}}

{{- define "crossgen-common.scaleTargetRef" -}}
scaleTargetRef:
  apiVersion: apps/v1
  kind: Deployment
  name: {{ include "crossgen-common.fullname" . }}
{{- end -}}

{{/* CPU (and memory) based scaling; KEDA takes over when autoscaling.keda.enabled. */}}
{{- define "crossgen-common.horizontalPodAutoscaler" -}}
{{- $a := .root.Values.autoscaling -}}
{{- if and $a.enabled (not $a.keda.enabled) }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  {{- include "crossgen-common.metadata" (list . "server" "") | nindent 2 }}
spec:
  {{- include "crossgen-common.scaleTargetRef" . | nindent 2 }}
  minReplicas: {{ $a.minReplicas }}
  maxReplicas: {{ $a.maxReplicas }}
  metrics:
    {{- with $a.targetCPUUtilizationPercentage }}
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
    {{- with $a.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
  {{- with $a.behavior }}
  behavior:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}

{{/*
KEDA: one kafka trigger per consumed topic (consumer group crossgen-<service>, as topics.py names
it; the chart tests check it) so that each topic's lag counts and no trigger asks for more
replicas than its topic has partitions; plus the CPU target, so the HTTP side still scales. KEDA
owns the HPA it creates; ours is then not rendered.
*/}}
{{- define "crossgen-common.scaledObject" -}}
{{- $a := .root.Values.autoscaling -}}
{{- if and $a.enabled $a.keda.enabled }}
{{- $k := include "crossgen-common.kafkaConfig" (dict "kafka" .root.Values.kafka "global" .root.Values.global) | fromYaml -}}
{{- $useCa := and $k.tls $k.sslCa.existingSecret -}}
{{- $auth := or $k.sasl $useCa -}}
{{- $saslModes := dict "PLAIN" "plaintext" "SCRAM-SHA-256" "scram_sha256" "SCRAM-SHA-512" "scram_sha512" -}}
{{- if $auth }}
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  {{- include "crossgen-common.metadata" (list . "server" "-kafka") | nindent 2 }}
spec:
  secretTargetRef:
    {{- if $k.sasl }}
    - parameter: username
      name: {{ $k.saslUsername.existingSecret }}
      key: {{ $k.saslUsername.key }}
    - parameter: password
      name: {{ $k.saslPassword.existingSecret }}
      key: {{ $k.saslPassword.key }}
    {{- end }}
    {{- if $useCa }}
    - parameter: ca
      name: {{ $k.sslCa.existingSecret }}
      key: {{ $k.sslCa.key }}
    {{- end }}
---
{{- end }}
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  {{- include "crossgen-common.metadata" (list . "server" "") | nindent 2 }}
spec:
  {{- include "crossgen-common.scaleTargetRef" . | nindent 2 }}
  pollingInterval: {{ $a.keda.pollingInterval }}
  cooldownPeriod: {{ $a.keda.cooldownPeriod }}
  minReplicaCount: {{ $a.minReplicas }}
  maxReplicaCount: {{ $a.maxReplicas }}
  {{- with $a.behavior }}
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        {{- toYaml . | nindent 8 }}
  {{- end }}
  triggers:
    {{- range ($a.keda.topics | default .consumes) }}
    - type: kafka
      metadata:
        bootstrapServers: {{ $k.bootstrapServers | quote }}
        consumerGroup: {{ printf "crossgen-%s" $.name | quote }}
        topic: {{ . | quote }}
        lagThreshold: {{ $a.keda.lagThreshold | quote }}
        activationLagThreshold: {{ $a.keda.activationLagThreshold | quote }}
        offsetResetPolicy: earliest
        allowIdleConsumers: {{ $a.keda.allowIdleConsumers | quote }}
        {{- if $k.sasl }}
        sasl: {{ get $saslModes $k.saslMechanism | default "none" | quote }}
        {{- end }}
        {{- if $k.tls }}
        tls: enable
        {{- end }}
      {{- if $auth }}
      authenticationRef:
        name: {{ include "crossgen-common.fullname" $ }}-kafka
      {{- end }}
    {{- end }}
    {{- with $a.targetCPUUtilizationPercentage }}
    - type: cpu
      metricType: Utilization
      metadata:
        value: {{ . | quote }}
    {{- end }}
{{- end }}
{{- end -}}

{{/*
Ingress: only the HTTP port, from the peers listed (anyone when none are). Egress: open unless
networkPolicy.egress.restrict, then DNS plus the rules given (Kafka, PostgreSQL, SMTP, JWKS).
*/}}
{{- define "crossgen-common.networkPolicy" -}}
{{- $np := .root.Values.networkPolicy -}}
{{- if $np.enabled }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  {{- include "crossgen-common.metadata" (list . "server" "") | nindent 2 }}
spec:
  podSelector:
    matchLabels:
      {{- include "crossgen-common.selectorLabels" (list . "server") | nindent 6 }}
  policyTypes:
    - Ingress
    {{- if $np.egress.restrict }}
    - Egress
    {{- end }}
  ingress:
    - ports:
        - port: http
          protocol: TCP
      {{- with $np.ingress.from }}
      from:
        {{- toYaml . | nindent 8 }}
      {{- end }}
  {{- if $np.egress.restrict }}
  egress:
    {{- if $np.egress.allowDns }}
    - ports:
        - port: 53
          protocol: UDP
        - port: 53
          protocol: TCP
    {{- end }}
    {{- with $np.egress.to }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
{{- end }}
{{- end -}}

{{- define "crossgen-common.serviceMonitor" -}}
{{- $sm := .root.Values.serviceMonitor -}}
{{- if $sm.enabled }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "crossgen-common.fullname" . }}
  namespace: {{ $sm.namespace | default .root.Release.Namespace }}
  labels:
    {{- include "crossgen-common.labels" (list . "server") | nindent 4 }}
    {{- with $sm.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  jobLabel: app.kubernetes.io/name
  namespaceSelector:
    matchNames:
      - {{ .root.Release.Namespace }}
  selector:
    matchLabels:
      {{- include "crossgen-common.selectorLabels" (list . "server") | nindent 6 }}
  endpoints:
    - port: http
      path: /metrics
      interval: {{ $sm.interval }}
      scrapeTimeout: {{ $sm.scrapeTimeout }}
      {{- with $sm.relabelings }}
      relabelings:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $sm.metricRelabelings }}
      metricRelabelings:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}
{{- end -}}
