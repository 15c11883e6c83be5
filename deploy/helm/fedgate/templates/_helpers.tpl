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
  {{- with .port }}
  ports:
    - containerPort: {{ . }}
  readinessProbe:
    tcpSocket: { port: {{ . }} }
  {{- end }}
  volumeMounts:
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
