{{/*
Names and labels.
*/}}
{{- define "ngshare.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ngshare.fullname" -}}
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

{{- define "ngshare.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ngshare.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ngshare.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ngshare.labels" -}}
helm.sh/chart: {{ include "ngshare.chart" . }}
{{ include "ngshare.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "ngshare.pvcName" -}}
{{- .Values.pvc.existingClaim | default (printf "%s-pvc" (include "ngshare.fullname" .)) }}
{{- end }}

{{/*
A flag's value as ngshare reads it: strings as they are, numbers (YAML
numbers arrive as floats) as whole numbers, never in exponent notation.
*/}}
{{- define "ngshare.flagValue" -}}
{{- if kindIs "string" . }}{{ . }}{{ else }}{{ int64 . }}{{ end }}
{{- end }}

{{- define "ngshare.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/*
Where ngshare is served: the JupyterHub service prefix, and the URL inside
the cluster (the Service), for the Hub's service entry and for nbgrader.
*/}}
{{- define "ngshare.prefix" -}}
{{- printf "%sservices/%s/" .Values.ngshare.hub_base_url .Values.ngshare.service_name }}
{{- end }}

{{- define "ngshare.clusterURL" -}}
{{- printf "http://%s.%s.svc.cluster.local:%v" (include "ngshare.fullname" .) .Release.Namespace .Values.deployment.port }}
{{- end }}

{{/*
The database: SQLite on the volume unless a URL or an existing Secret names
another one. Returns "true" or "".
*/}}
{{- define "ngshare.sqlite" -}}
{{- $db := .Values.database }}
{{- if $db.existingSecret }}
{{- else if not $db.url }}true
{{- else if hasPrefix "sqlite" $db.url }}true
{{- end }}
{{- end }}

{{/*
Object storage: "true" when storage.s3.bucket names a bucket, and the
--storage value then, s3://BUCKET/PREFIX (s3://BUCKET without a prefix).
*/}}
{{- define "ngshare.s3" -}}
{{- if .Values.storage.s3.bucket }}true{{ end }}
{{- end }}

{{- define "ngshare.storageURL" -}}
{{- $s3 := .Values.storage.s3 }}
{{- if $s3.prefix }}{{ printf "s3://%s/%s" $s3.bucket $s3.prefix }}
{{- else }}{{ printf "s3://%s" $s3.bucket }}
{{- end }}
{{- end }}

{{/*
"true" when the pods mount a volume at /srv/ngshare: it holds the files
(no bucket), or the SQLite database, or pvc.existingClaim is named (kept
mounted beside a bucket, e.g. to copy its files there). With a bucket and
PostgreSQL there is none: nothing is written to the pod's disk.
*/}}
{{- define "ngshare.volume" -}}
{{- if or (not (include "ngshare.s3" .)) (include "ngshare.sqlite" .) .Values.pvc.existingClaim }}true{{ end }}
{{- end }}

{{/* The ServiceAccount the pods run as, "" for the namespace's default. */}}
{{- define "ngshare.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- .Values.serviceAccount.name | default (include "ngshare.fullname" .) }}
{{- else }}
{{- .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ngshare.accessModes" -}}
{{- if .Values.pvc.accessModes }}
{{- toJson .Values.pvc.accessModes }}
{{- else if gt (int .Values.deployment.replicaCount) 1 }}
{{- toJson (list "ReadWriteMany") }}
{{- else }}
{{- toJson (list "ReadWriteOnce") }}
{{- end }}
{{- end }}

{{/*
Recreate on SQLite: two pods must never have one SQLite file open, not even
for the seconds of a rolling update. RollingUpdate on a server database when
every pod can mount the volume at once (ReadWriteMany).
*/}}
{{- define "ngshare.strategyType" -}}
{{- if .Values.deployment.strategy.type }}
{{- .Values.deployment.strategy.type }}
{{- else if include "ngshare.sqlite" . }}Recreate
{{- else if not (include "ngshare.volume" .) }}RollingUpdate
{{- else if has "ReadWriteMany" (include "ngshare.accessModes" . | fromJsonArray) }}RollingUpdate
{{- else }}Recreate
{{- end }}
{{- end }}

{{/*
Configurations that cannot work stop the install with one clear message.
*/}}
{{- define "ngshare.validate" -}}
{{- $db := .Values.database }}
{{- if and $db.url $db.existingSecret }}
{{- fail "ngshare: set database.url or database.existingSecret, not both" }}
{{- end }}
{{- if and $db.url (hasPrefix "postgres://" $db.url) }}
{{- fail "ngshare: database.url must start with postgresql:// (or postgresql+psycopg://), not postgres://: postgresql://USER:PASSWORD@HOST:5432/DATABASE" }}
{{- end }}
{{- if and $db.url (hasPrefix "postgresql+" $db.url) (not (hasPrefix "postgresql+psycopg://" $db.url)) }}
{{- fail "ngshare: database.url names a PostgreSQL driver the image does not have (it has psycopg 3): use postgresql://USER:PASSWORD@HOST:5432/DATABASE or postgresql+psycopg://..." }}
{{- end }}
{{- with .Values.ngshare.hub_api_token }}
{{- if not (regexMatch `^[^'"\\\s]{8,}$` (toString .)) }}
{{- fail "ngshare: ngshare.hub_api_token must be at least 8 characters without quotes, backslashes or spaces: generate one with openssl rand -hex 32 (or leave it empty to have one generated)" }}
{{- end }}
{{- end }}
{{- with .Values.ngshare.cookie_secret }}
{{- if not (regexMatch `^([0-9a-fA-F]{2}){32,}$` (toString .)) }}
{{- fail "ngshare: ngshare.cookie_secret must be at least 64 hexadecimal digits (32 bytes): generate one with openssl rand -hex 32 (or leave it empty to have one generated)" }}
{{- end }}
{{- end }}
{{- if lt (include "ngshare.bufferedBytes" . | float64) (include "ngshare.bodyBytes" . | float64) }}
{{- fail "ngshare: ngshare.max_buffered_size must be at least ngshare.max_body_size: a body larger than it could never be received" }}
{{- end }}
{{- if include "ngshare.sqlite" . }}
{{- if gt (int .Values.deployment.replicaCount) 1 }}
{{- fail (printf "ngshare: deployment.replicaCount is %v, but the database is SQLite: replicas must never share one SQLite file. Run one replica, or give a PostgreSQL database (database.url or database.existingSecret)." .Values.deployment.replicaCount) }}
{{- end }}
{{- if eq (include "ngshare.strategyType" .) "RollingUpdate" }}
{{- fail "ngshare: deployment.strategy.type RollingUpdate needs a PostgreSQL database: on SQLite the old and the new pod would share the database file. Use Recreate." }}
{{- end }}
{{- end }}
{{- include "ngshare.validateStorage" . }}
{{- end }}

{{/*
Where the files go: a bucket with usable values, or a volume every replica
can mount. One message per mistake, naming the value to set.
*/}}
{{- define "ngshare.validateStorage" -}}
{{- $s3 := .Values.storage.s3 }}
{{- $replicas := int .Values.deployment.replicaCount }}
{{- if include "ngshare.s3" . }}
{{- $bucket := toString $s3.bucket }}
{{- if regexMatch `[:/]` $bucket }}
{{- fail (printf "ngshare: storage.s3.bucket is %q, but it takes the bucket's name only (e.g. my-bucket): put the key prefix in storage.s3.prefix and another store's URL in storage.s3.endpointUrl." $bucket) }}
{{- end }}
{{- if not (regexMatch `^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$` $bucket) }}
{{- fail (printf "ngshare: storage.s3.bucket %q is not a bucket name: set it to the name of an existing bucket, 3 to 63 lowercase letters, digits, dots, hyphens or underscores, beginning and ending with a letter or digit." $bucket) }}
{{- end }}
{{- $prefix := toString $s3.prefix }}
{{- if or (hasPrefix "/" $prefix) (hasSuffix "/" $prefix) }}
{{- fail (printf "ngshare: storage.s3.prefix %q must not begin or end with a slash: write it as %q (the keys are PREFIX/sha256/...; empty: the top of the bucket)." $prefix (trimAll "/" $prefix)) }}
{{- end }}
{{- if not (regexMatch `^([A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*)?$` $prefix) }}
{{- fail (printf "ngshare: storage.s3.prefix %q is not a usable key prefix: set it to names of letters, digits, '.', '_' or '-' (not beginning with '.') separated by single slashes, e.g. ngshare or courses/ngshare." $prefix) }}
{{- end }}
{{- with $s3.endpointUrl }}
{{- if not (regexMatch `^https?://[^/\s?#]+(/[^\s?#]*)?$` (toString .)) }}
{{- fail (printf "ngshare: storage.s3.endpointUrl %q is not an http:// or https:// URL: set it to the store's S3 endpoint, e.g. https://storage.googleapis.com or http://seaweedfs-s3.storage.svc.cluster.local:8333 (empty: AWS S3)." (toString .)) }}
{{- end }}
{{- end }}
{{- with $s3.region }}
{{- if not (regexMatch `^[A-Za-z0-9_-]+$` (toString .)) }}
{{- fail (printf "ngshare: storage.s3.region %q is not a region name: set it to the bucket's region, e.g. eu-central-1 (or leave it empty)." (toString .)) }}
{{- end }}
{{- end }}
{{- else }}
{{- range $key := list "endpointUrl" "region" "existingSecret" "pathStyle" }}
{{- if get $s3 $key }}
{{- fail (printf "ngshare: storage.s3.%s is set, but storage.s3.bucket is empty: set storage.s3.bucket to the name of the bucket to keep the files there, or remove the storage.s3 values to keep them on the volume." $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and (gt $replicas 1) (include "ngshare.volume" .) }}
{{- $modes := include "ngshare.accessModes" . | fromJsonArray }}
{{- if not (has "ReadWriteMany" $modes) }}
{{- if include "ngshare.s3" . }}
{{- fail (printf "ngshare: deployment.replicaCount is %d, but every replica would mount pvc.existingClaim, and pvc.accessModes %s has no ReadWriteMany. With a bucket on PostgreSQL no volume is needed: remove pvc.existingClaim once the files are copied, or run one replica until then." $replicas (toJson $modes)) }}
{{- else }}
{{- fail (printf "ngshare: deployment.replicaCount is %d, but the files are on a volume and pvc.accessModes %s has no ReadWriteMany: every replica mounts the same files. Keep the files in object storage instead (storage.s3.bucket: then no volume at all), or set pvc.accessModes to [ReadWriteMany] with a storage class that provides it (pvc.storageClassName), or run one replica." $replicas (toJson $modes)) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and (not .Values.serviceAccount.create) .Values.serviceAccount.annotations }}
{{- fail "ngshare: serviceAccount.annotations are set, but serviceAccount.create is false, so no account would carry them: set serviceAccount.create to true (or annotate your own account and name it in serviceAccount.name)." }}
{{- end }}
{{- end }}

{{/*
Secret values: the value given in values.yaml, else the one already in the
chart's Secret (so that upgrades keep it), else a new random one. A value is
decided once per render and remembered, so that the Secret, the checksum on
the pods and NOTES.txt agree.
*/}}
{{- define "ngshare.secretValue" -}}
{{- $root := .root }}
{{- if not (hasKey $root.Values "__ngshare_secret_values") }}
{{- $_ := set $root.Values "__ngshare_secret_values" dict }}
{{- end }}
{{- $memo := get $root.Values "__ngshare_secret_values" }}
{{- if not (hasKey $memo .key) }}
{{- $value := .given | default "" | toString }}
{{- if not $value }}
{{- $existing := include "ngshare.existingSecretData" $root | fromJson }}
{{- with get $existing .key }}
{{- $value = b64dec . }}
{{- end }}
{{- end }}
{{- if not $value }}
{{- if eq .kind "hex" }}
{{- $value = randAlphaNum 64 | sha256sum }}
{{- else }}
{{- $value = randAlphaNum 32 }}
{{- end }}
{{- end }}
{{- $_ := set $memo .key $value }}
{{- end }}
{{- get $memo .key }}
{{- end }}

{{- define "ngshare.hubApiToken" -}}
{{- include "ngshare.secretValue" (dict "root" . "key" "hub-api-token" "given" .Values.ngshare.hub_api_token "kind" "alphanumeric") }}
{{- end }}

{{- define "ngshare.cookieSecret" -}}
{{- include "ngshare.secretValue" (dict "root" . "key" "cookie-secret" "given" .Values.ngshare.cookie_secret "kind" "hex") }}
{{- end }}

{{- define "ngshare.secretData" -}}
hub-api-token: {{ include "ngshare.hubApiToken" . | b64enc | quote }}
cookie-secret: {{ include "ngshare.cookieSecret" . | b64enc | quote }}
{{- if .Values.database.url }}
database-url: {{ .Values.database.url | b64enc | quote }}
{{- end }}
{{- end }}

{{/*
The Hub pod's environment variable that NOTES.txt has Zero to JupyterHub
read the service's API token into (from the chart's Secret), so that the
token never appears in helm output or in the Z2JH values.
*/}}
{{- define "ngshare.hubTokenVariable" -}}
{{- if eq .Values.ngshare.service_name "ngshare" }}NGSHARE_API_TOKEN
{{- else }}{{ printf "NGSHARE_API_TOKEN_%s" (.Values.ngshare.service_name | upper | replace "-" "_") }}
{{- end }}
{{- end }}

{{/* The image is still the chart's default repository, which is not
published (whatever the tag). */}}
{{- define "ngshare.unpublishedImage" -}}
{{- if eq .Values.image.repository "ngshare/ngshare" }}true{{ end }}
{{- end }}
