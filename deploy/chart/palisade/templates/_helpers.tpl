{{/*
Names. The fullname is the release name when it contains the chart name
(release "palisade" -> "palisade", "palisade-admission", ... which are the
defaults of `palisade admission`'s flags), else <release>-<chart>.
*/}}
{{- define "palisade.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "palisade.fullname" -}}
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

{{/* A component's name: "palisade-admission". Call with (list $ "admission"). */}}
{{- define "palisade.componentName" -}}
{{- $root := index . 0 }}
{{- printf "%s-%s" (include "palisade.fullname" $root) (index . 1) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "palisade.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object. app.kubernetes.io/part-of=palisade is also how the
webhook's certificate manager recognises Palisade's webhook configurations
(admission.DefaultWebhookSelector). Call with (list $ "component").
*/}}
{{- define "palisade.labels" -}}
{{- $root := index . 0 -}}
helm.sh/chart: {{ include "palisade.chart" $root }}
{{ include "palisade.selectorLabels" . }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: palisade
{{- end }}

{{/* Selector labels: stable across upgrades (a selector is immutable). */}}
{{- define "palisade.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "palisade.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "palisade.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Where secrets and scratch space are mounted in every container. */}}
{{- define "palisade.secretsDir" -}}/etc/palisade{{- end }}

{{/*
The bundle this cluster enforces, on the controller's Service. https when
the controller serves TLS (controller.tlsSecret).
*/}}
{{- define "palisade.bundleURL" -}}
{{- $scheme := ternary "https" "http" (ne .Values.controller.tlsSecret "") }}
{{- printf "%s://%s.%s.svc:%d/bundles/%s.tar.gz" $scheme (include "palisade.componentName" (list . "controller")) .Release.Namespace (int .Values.controller.port) (required "policy.cluster is required: this cluster's name in the policy" .Values.policy.cluster) }}
{{- end }}

{{/*
Flags of a bundle consumer (admission, scanner: the same flags) for the
controller's token, CA and bundle signatures, and for image verification.
*/}}
{{- define "palisade.consumerArgs" -}}
{{- $dir := include "palisade.secretsDir" . }}
{{- if .Values.bundles.tokenSecret }}
- --bundle-token-file={{ $dir }}/bundle-token/token
{{- end }}
{{- if .Values.controller.tlsSecret }}
- --bundle-ca-file={{ $dir }}/bundle-ca/ca.crt
{{- end }}
{{- with .Values.bundles.signing }}
{{- if .verifyKeySecret }}
- --verify-key-file={{ $dir }}/bundle-verify/verify.key
- --verify-alg={{ .algorithm }}
- --verify-key-id={{ .keyID }}
{{- end }}
{{- end }}
{{- with .Values.imageVerification }}
- --verify-timeout={{ .timeout }}
- --read-pull-secrets={{ .readPullSecrets }}
{{- if .registryConfigSecret }}
- --registry-config={{ $dir }}/registry/config.json
{{- end }}
{{- end }}
{{- end }}

{{/* Volume mounts for palisade.consumerArgs. */}}
{{- define "palisade.consumerVolumeMounts" -}}
{{- $dir := include "palisade.secretsDir" . }}
{{- if .Values.bundles.tokenSecret }}
- name: bundle-token
  mountPath: {{ $dir }}/bundle-token
  readOnly: true
{{- end }}
{{- if .Values.controller.tlsSecret }}
- name: bundle-ca
  mountPath: {{ $dir }}/bundle-ca
  readOnly: true
{{- end }}
{{- if .Values.bundles.signing.verifyKeySecret }}
- name: bundle-verify
  mountPath: {{ $dir }}/bundle-verify
  readOnly: true
{{- end }}
{{- if .Values.imageVerification.registryConfigSecret }}
- name: registry
  mountPath: {{ $dir }}/registry
  readOnly: true
{{- end }}
{{- end }}

{{/*
Volumes for palisade.consumerArgs. Each mounts only the key it needs: the
controller's TLS Secret holds its private key, which consumers never see.
*/}}
{{- define "palisade.consumerVolumes" -}}
{{- if .Values.bundles.tokenSecret }}
- name: bundle-token
  secret:
    secretName: {{ .Values.bundles.tokenSecret }}
    defaultMode: 0440
    items:
      - key: token
        path: token
{{- end }}
{{- if .Values.controller.tlsSecret }}
- name: bundle-ca
  secret:
    secretName: {{ .Values.controller.tlsSecret }}
    defaultMode: 0440
    items:
      - key: ca.crt
        path: ca.crt
{{- end }}
{{- if .Values.bundles.signing.verifyKeySecret }}
- name: bundle-verify
  secret:
    secretName: {{ .Values.bundles.signing.verifyKeySecret }}
    defaultMode: 0440
    items:
      - key: verify.key
        path: verify.key
{{- end }}
{{- if .Values.imageVerification.registryConfigSecret }}
- name: registry
  secret:
    secretName: {{ .Values.imageVerification.registryConfigSecret }}
    defaultMode: 0440
    items:
      - key: .dockerconfigjson
        path: config.json
{{- end }}
{{- end }}

{{/* Pod-level settings every component shares. Call with (list $ .Values.<component>). */}}
{{- define "palisade.podScheduling" -}}
{{- $root := index . 0 }}
{{- $c := index . 1 }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- with $c.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $c.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Checks of values that would otherwise render something broken.
*/}}
{{- define "palisade.validate" -}}
{{- $refs := 0 }}
{{- range (list .Values.policy.branch .Values.policy.tag .Values.policy.commit) }}
{{- if . }}{{ $refs = add1 $refs }}{{ end }}
{{- end }}
{{- if gt $refs 1 }}
{{- fail "policy: set only one of branch, tag and commit" }}
{{- end }}
{{- if ne (empty .Values.bundles.signing.keySecret) (empty .Values.bundles.signing.verifyKeySecret) }}
{{- fail "bundles.signing: set both keySecret and verifyKeySecret, or neither" }}
{{- end }}
{{- if and (eq .Values.admission.certificates.mode "secret") (not .Values.admission.certificates.secretName) }}
{{- fail "admission.certificates.mode secret needs admission.certificates.secretName: an existing kubernetes.io/tls Secret" }}
{{- end }}
{{- with .Values.learning }}
{{- if .enabled }}
{{- if not $.Values.sensor.enabled }}
{{- fail "learning.enabled needs sensor.enabled: the sensors are what observes the workloads" }}
{{- end }}
{{- if not $.Values.policy.branch }}
{{- fail "learning.enabled needs policy.branch: proposals are pull requests into the followed branch" }}
{{- end }}
{{- if not (or (hasPrefix "https://" $.Values.policy.repository) (hasPrefix "http://" $.Values.policy.repository)) }}
{{- fail "learning.enabled needs an https:// (or http://) policy.repository: proposals are pushed over HTTPS, not SSH" }}
{{- end }}
{{- if or (not $.Values.policy.auth.existingSecret) (ne $.Values.policy.auth.method "https") }}
{{- fail "learning.enabled needs policy.auth.existingSecret with method https: the credentials proposals are pushed with" }}
{{- end }}
{{- if not .forge.kind }}
{{- fail "learning.enabled needs learning.forge.kind: gitea, github or gitlab" }}
{{- end }}
{{- if not .forge.repo }}
{{- fail "learning.enabled needs learning.forge.repo: owner/name on the forge" }}
{{- end }}
{{- if and (ne .forge.kind "github") (not .forge.url) }}
{{- fail (printf "learning.forge.kind %s needs learning.forge.url: the forge's API base URL" .forge.kind) }}
{{- end }}
{{- if not .forge.tokenSecret }}
{{- fail "learning.enabled needs learning.forge.tokenSecret: an existing Secret with the forge API token" }}
{{- end }}
{{- if not .adminTokenSecret }}
{{- fail "learning.enabled needs learning.adminTokenSecret: an existing Secret with the learning API's admin token (key token)" }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* The Secret of the webhook's serving certificate (both modes). */}}
{{- define "palisade.admissionSecretName" -}}
{{- default (include "palisade.componentName" (list . "admission-tls")) .Values.admission.certificates.secretName }}
{{- end }}

{{/*
The controller's base URL on its Service, as the sensors reach it (learning
observations). https when the controller serves TLS (controller.tlsSecret).
*/}}
{{- define "palisade.controllerURL" -}}
{{- $scheme := ternary "https" "http" (ne .Values.controller.tlsSecret "") }}
{{- printf "%s://%s.%s.svc:%d" $scheme (include "palisade.componentName" (list . "controller")) .Release.Namespace (int .Values.controller.port) }}
{{- end }}

{{/* Where the sensor's projected ServiceAccount token for learning is. */}}
{{- define "palisade.learningTokenDir" -}}/var/run/secrets/tokens{{- end }}

{{/* The learning profiles' claim: an existing one or the chart's. */}}
{{- define "palisade.learningClaimName" -}}
{{- default (include "palisade.componentName" (list . "learning")) .Values.learning.persistence.existingClaim }}
{{- end }}
