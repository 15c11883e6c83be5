{{- define "fedgate.name" -}}{{ .Release.Name }}-fedgate{{- end -}}

{{- define "fedgate.labels" -}}
app.kubernetes.io/name: fedgate
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* The container every service runs: same image, config and keys; `app` picks the entry point. */}}
{{- define "fedgate.container" -}}
- name: {{ .app }}
  image: "{{ .root.Values.image.repository }}:{{ .root.Values.image.tag }}"
  imagePullPolicy: {{ .root.Values.image.pullPolicy }}
  command: ["node", "dist/apps/{{ .app }}/src/main.js"]
  envFrom:
    - configMapRef:
        name: {{ include "fedgate.name" .root }}-config
  {{- with .env }}
  env:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    {{- with .port }}
    - { name: listener, containerPort: {{ . }} }
    {{- end }}
    - { name: metrics, containerPort: {{ .root.Values.metrics.port }} }
  {{- with .root.Values.probes }}
  startupProbe:
    httpGet: { path: /startupz, port: metrics }
    {{- toYaml .startup | nindent 4 }}
  livenessProbe:
    httpGet: { path: /livez, port: metrics }
    {{- toYaml .liveness | nindent 4 }}
  readinessProbe:
    httpGet: { path: /readyz, port: metrics }
    {{- toYaml .readiness | nindent 4 }}
  {{- end }}
  volumeMounts:
    - { name: settings, mountPath: /etc/fedgate/config, readOnly: true }
    - { name: keys, mountPath: /etc/fedgate/keys, readOnly: true }
    - { name: registrations, mountPath: /etc/fedgate/registrations, readOnly: true }
    - { name: data, mountPath: /var/lib/fedgate }
    {{- if has .app (list "federation-ingress" "chat-sync") }}
    - { name: media, mountPath: /var/lib/fedgate/media }
    {{- end }}
    {{- if and (eq .app "federation-ingress") .root.Values.policyServer.enabled }}
    - { name: policy, mountPath: /etc/fedgate/policy, readOnly: true }
    - { name: policy-key, mountPath: /etc/fedgate/policy-key, readOnly: true }
    {{- end }}
  resources:
    {{- toYaml .root.Values.resources | nindent 4 }}
{{- end -}}

{{- define "fedgate.volumes" -}}
- name: keys
  secret:
    secretName: {{ .Values.keysSecret }}
    defaultMode: 0400
- name: settings
  configMap:
    name: {{ include "fedgate.name" . }}-settings
- name: registrations
  configMap:
    name: {{ .Values.registrationsConfigMap }}
- name: data
  emptyDir: {}
{{- /* Media bytes: chat-sync writes uploads, federation-ingress serves them, on every replica. */}}
- name: media
  persistentVolumeClaim:
    claimName: {{ .Values.media.existingClaim | default (printf "%s-media" (include "fedgate.name" .)) }}
{{- end -}}

{{/* Stages whose replicas share partitions: more than one needs leases. */}}
{{- define "fedgate.checkReplicas" -}}
{{- $v := .Values -}}
{{- if not (has $v.ownership.mode (list "leases" "static")) -}}
{{- fail (printf "ownership.mode must be leases or static, not %q" $v.ownership.mode) -}}
{{- end -}}
{{- range $key, $stage := dict "stateResolver" "state-resolver" "federationEgress" "federation-egress" "chatSync" "chat-sync" -}}
{{- $replicas := int (index $v.services $key).replicas -}}
{{- if and (gt $replicas 1) (ne $v.ownership.mode "leases") -}}
{{- fail (printf "services.%s.replicas is %d, but with ownership.mode %s every %s replica would take every partition (two egresses sending to one destination, two state-resolvers racing on one room): set ownership.mode: leases" $key $replicas $v.ownership.mode $stage) -}}
{{- end -}}
{{- if lt $replicas 0 -}}
{{- fail (printf "services.%s.replicas must not be negative" $key) -}}
{{- end -}}
{{- end -}}
{{- if $v.autoscaling.keda.enabled -}}
{{- if ne $v.ownership.mode "leases" -}}
{{- fail "autoscaling.keda.enabled needs ownership.mode: leases (replicas added by the autoscaler must find their partitions by themselves)" -}}
{{- end -}}
{{- range $key, $s := $v.autoscaling.keda.stages -}}
{{- if $s.enabled -}}
{{- if or (lt (int $s.minReplicas) 1) (lt (int $s.maxReplicas) (int $s.minReplicas)) -}}
{{- fail (printf "autoscaling.keda.stages.%s: need 1 <= minReplicas <= maxReplicas" $key) -}}
{{- end -}}
{{- if and (eq $key "stateResolver") (gt (int $s.maxReplicas) (int $v.partitions.rooms)) -}}
{{- fail (printf "autoscaling.keda.stages.stateResolver.maxReplicas %d is more than partitions.rooms %d: the extra replicas would get no work" (int $s.maxReplicas) (int $v.partitions.rooms)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- /* The policy server's files (federation-ingress only): the operator's policy and the policy key. */}}
{{- define "fedgate.policyVolumes" -}}
- name: policy
  configMap:
    name: {{ .Values.policyServer.policyConfigMap }}
- name: policy-key
  secret:
    secretName: {{ .Values.policyServer.keySecret }}
    defaultMode: 0400
{{- end -}}
