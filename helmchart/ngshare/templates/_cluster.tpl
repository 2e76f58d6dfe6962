{{/*
The only thing the chart reads from the cluster: the data of its own Secret
from an earlier install, so that an upgrade keeps the generated API token
and cookie secret. Returns JSON ({} on a first install, and under
"helm template" or --dry-run, where lookup finds nothing).
tests/test_helm_values.py replaces this file to stand in for a cluster.
*/}}
{{- define "ngshare.existingSecretData" -}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace (include "ngshare.fullname" .) }}
{{- get $secret "data" | default dict | toJson }}
{{- end }}
